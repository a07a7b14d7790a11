//! The SLA's figures as `/metrics` shows them, computed from the database when scraped.
//!
//! Compliance = met / (met + breached) of the mutations completed in a period (excluded ones
//! do not count); 1 when none completed. The error budget of a period is 5 % of its
//! completed mutations; what remains is that minus the breaches. The projection counts the
//! open mutations at their likely outcome as well: one already overdue or at risk (less than
//! `at_risk_werkdagen` left) as a breach, every other one as met — the node publishes within
//! minutes of an approval, so an open mutation with time left is late only when its review
//! is, and at-risk is exactly when the loket is told to hurry.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::exposition::Exposition;
use super::{SLA_TARGET, SlaError, SlaPolicy, SlaService, Standing};
use crate::calendar::{local_date, start_of};
use crate::domain::{ListKind, MutationStatus, SlaOutcome};
use crate::storage::SlaTotal;

/// The histogram's upper bounds in werkdagen; 2 is the SLA itself.
pub const HISTOGRAM_BOUNDS: [f64; 8] = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];

/// Where the business clock starts counting (`business_seconds_total`): fixed, so every
/// replica and every restart reports the same counter.
fn business_clock_origin() -> DateTime<Utc> {
    start_of(NaiveDate::from_ymd_opt(2020, 1, 1).expect("a valid date"))
}

/// Bands of the time left before an open mutation's deadline, in werkdagen.
const TIME_LEFT_BANDS: [(&str, f64); 4] = [
    ("overdue", 0.0),
    ("0_to_0.5", 0.5),
    ("0.5_to_1", 1.0),
    ("1_to_2", 2.0),
];
const TIME_LEFT_REST: &str = "2_or_more";

/// An open mutation as the figures see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenMutation {
    pub list: ListKind,
    pub status: MutationStatus,
    /// Business time since the SLA clock started.
    pub age_werkdagen: f64,
    /// Business time left before the deadline, and whether that is at risk.
    pub standing: Standing,
}

/// Completed and open mutations of one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Period {
    pub met: BTreeMap<ListKind, u64>,
    pub breached: BTreeMap<ListKind, u64>,
    /// Open mutations expected to meet / to breach (see the module doc).
    pub open_met: u64,
    pub open_breached: u64,
}

impl Period {
    fn total(map: &BTreeMap<ListKind, u64>) -> f64 {
        map.values().sum::<u64>() as f64
    }
    pub fn compliance(&self) -> f64 {
        let (met, breached) = (Self::total(&self.met), Self::total(&self.breached));
        match met + breached {
            0.0 => 1.0,
            all => met / all,
        }
    }
    /// Breaches the period may still have: 5 % of its completed mutations, minus its
    /// breaches (negative once overspent).
    pub fn budget_remaining(&self) -> f64 {
        let all = Self::total(&self.met) + Self::total(&self.breached);
        (1.0 - SLA_TARGET) * all - Self::total(&self.breached)
    }
    /// The share of the budget left: 1 untouched, 0 spent, below 0 overspent.
    pub fn budget_remaining_ratio(&self) -> f64 {
        let all = Self::total(&self.met) + Self::total(&self.breached);
        match all {
            0.0 => 1.0,
            all => self.budget_remaining() / ((1.0 - SLA_TARGET) * all),
        }
    }
    pub fn projected_compliance(&self) -> f64 {
        let met = Self::total(&self.met) + self.open_met as f64;
        let all = met + Self::total(&self.breached) + self.open_breached as f64;
        match all {
            0.0 => 1.0,
            all => met / all,
        }
    }
}

/// Everything the SLA families show.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaStatus {
    pub at: DateTime<Utc>,
    pub totals: Vec<SlaTotal>,
    pub open: Vec<OpenMutation>,
    /// The rolling window and the current calendar quarter.
    pub rolling: Period,
    pub quarter: Period,
    pub business_seconds: f64,
    pub business_day: bool,
    pub covered_until: DateTime<Utc>,
}

/// The first instant of the calendar quarter `at` falls in, in Europe/Amsterdam.
pub fn quarter_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let date = local_date(at);
    let month = (date.month0() / 3) * 3 + 1;
    start_of(NaiveDate::from_ymd_opt(date.year(), month, 1).expect("a valid date"))
}

impl SlaService {
    /// The figures now, after storing what is still to be settled.
    pub async fn status(&self) -> Result<SlaStatus, SlaError> {
        self.settle_backlog().await?;
        let at = self.clock.now();
        let policy = &self.policy;
        let open: Vec<OpenMutation> = self
            .storage
            .open_deadlines(None)
            .await?
            .iter()
            .filter_map(|m| {
                let deadline = m.deadline?;
                let start = SlaPolicy::clock_start(m.submitted_at, m.effective_from);
                Some(OpenMutation {
                    list: m.list,
                    status: m.status,
                    age_werkdagen: policy.werkdagen.business_time(start, at),
                    standing: policy.standing(deadline, at),
                })
            })
            .collect();
        let rolling_since = at - policy.rolling_window;
        let quarter_since = quarter_start(at);
        let completed = self
            .storage
            // Up to and including now.
            .completed_mutations(
                rolling_since.min(quarter_since),
                at + chrono::Duration::microseconds(1),
            )
            .await?;
        let mut rolling = Period::default();
        let mut quarter = Period::default();
        for m in &completed {
            let Some(c) = &m.sla.completion else { continue };
            for (period, since) in [(&mut rolling, rolling_since), (&mut quarter, quarter_since)] {
                if c.completed_at < since {
                    continue;
                }
                match c.outcome {
                    SlaOutcome::Met => *period.met.entry(m.list).or_default() += 1,
                    SlaOutcome::Breached => *period.breached.entry(m.list).or_default() += 1,
                    SlaOutcome::Excluded => {}
                }
            }
        }
        for m in &open {
            for period in [&mut rolling, &mut quarter] {
                match m.standing.expects_breach() {
                    true => period.open_breached += 1,
                    false => period.open_met += 1,
                }
            }
        }
        let covered_until = start_of(policy.werkdagen.covered_until() + chrono::Days::new(1));
        Ok(SlaStatus {
            at,
            totals: self.storage.sla_totals(&HISTOGRAM_BOUNDS).await?,
            open,
            rolling,
            quarter,
            business_seconds: policy.werkdagen.business_time(business_clock_origin(), at)
                * 86_400.0,
            business_day: policy.werkdagen.is_werkdag(local_date(at)),
            covered_until,
        })
    }
}

const URGENCY: [(bool, &str); 2] = [(false, "false"), (true, "true")];

/// The SLA families in the Prometheus text format, or only `sla_figures_available 0` when
/// they could not be computed (the database did not answer).
pub fn exposition(status: Option<&SlaStatus>) -> Vec<u8> {
    let mut out = Exposition::default();
    out.family(
        "sla_figures_available",
        "gauge",
        "1 when this scrape's SLA figures could be computed from the database",
    );
    out.sample(
        "sla_figures_available",
        &[],
        f64::from(u8::from(status.is_some())),
    );
    if let Some(status) = status {
        status.write(&mut out);
    }
    out.into_bytes()
}

impl SlaStatus {
    fn write(&self, out: &mut Exposition) {
        self.completions(out);
        self.open_mutations(out);
        self.periods(out);
        out.family(
            "business_seconds_total",
            "counter",
            "Business time since 2020-01-01 in Europe/Amsterdam: advances only on werkdagen, 86400 per werkdag",
        );
        out.sample("business_seconds_total", &[], self.business_seconds);
        out.family("business_day", "gauge", "1 on a werkdag, 0 otherwise");
        out.sample("business_day", &[], f64::from(u8::from(self.business_day)));
        out.family(
            "calendar_covered_until",
            "gauge",
            "Unix time until which the decree table of gelijkgestelde dagen is known",
        );
        out.sample(
            "calendar_covered_until",
            &[],
            self.covered_until.timestamp() as f64,
        );
    }

    fn totals_of(&self, list: ListKind, urgent: bool) -> impl Iterator<Item = &SlaTotal> {
        self.totals
            .iter()
            .filter(move |t| t.list == list && t.urgent == urgent)
    }

    fn completions(&self, out: &mut Exposition) {
        out.family(
            "mutations_completed_total",
            "counter",
            "Mutations completed, by SLA outcome (excluded: rejected or withdrawn)",
        );
        for list in ListKind::ALL {
            for (urgent, urgent_label) in URGENCY {
                for outcome in SlaOutcome::ALL {
                    let count: i64 = self
                        .totals_of(list, urgent)
                        .filter(|t| t.outcome == outcome)
                        .map(|t| t.count)
                        .sum();
                    let labels = [
                        ("list", list.as_str()),
                        ("urgent", urgent_label),
                        ("slo", outcome.as_str()),
                    ];
                    out.sample("mutations_completed_total", &labels, count as f64);
                }
            }
        }
        out.family(
            "mutation_processing_werkdagen",
            "histogram",
            "Business time from submission to the first publication containing a mutation, in werkdagen",
        );
        for list in ListKind::ALL {
            for (urgent, urgent_label) in URGENCY {
                let published: Vec<&SlaTotal> = self
                    .totals_of(list, urgent)
                    .filter(|t| t.outcome != SlaOutcome::Excluded)
                    .collect();
                let labels = |le: &str| {
                    [
                        ("list", list.as_str().to_owned()),
                        ("urgent", urgent_label.to_owned()),
                        ("le", le.to_owned()),
                    ]
                };
                for (i, bound) in HISTOGRAM_BOUNDS.iter().enumerate() {
                    let at_most: i64 = published.iter().map(|t| t.at_most[i]).sum();
                    let labels = labels(&super::exposition::number(*bound));
                    out.sample(
                        "mutation_processing_werkdagen_bucket",
                        &borrowed(&labels),
                        at_most as f64,
                    );
                }
                let count: i64 = published.iter().map(|t| t.count).sum();
                // A fold from +0: an empty f64 sum is -0, which reads oddly in a scrape.
                let sum = published.iter().fold(0.0, |sum, t| sum + t.werkdagen_sum);
                out.sample(
                    "mutation_processing_werkdagen_bucket",
                    &borrowed(&labels("+Inf")),
                    count as f64,
                );
                let plain = [("list", list.as_str()), ("urgent", urgent_label)];
                out.sample("mutation_processing_werkdagen_sum", &plain, sum);
                out.sample("mutation_processing_werkdagen_count", &plain, count as f64);
            }
        }
    }

    fn open_mutations(&self, out: &mut Exposition) {
        out.family(
            "mutations_open",
            "gauge",
            "Mutations waiting for a decision (submitted) or for publication (approved)",
        );
        for list in ListKind::ALL {
            for status in [MutationStatus::Submitted, MutationStatus::Approved] {
                let count = self
                    .open
                    .iter()
                    .filter(|m| m.list == list && m.status == status)
                    .count();
                let labels = [("list", list.as_str()), ("state", status.as_str())];
                out.sample("mutations_open", &labels, count as f64);
            }
        }
        out.family(
            "mutation_oldest_open_werkdagen",
            "gauge",
            "Business age of the oldest open mutation, in werkdagen (0 when none is open)",
        );
        let oldest = self
            .open
            .iter()
            .map(|m| m.age_werkdagen)
            .fold(0.0, f64::max);
        out.sample("mutation_oldest_open_werkdagen", &[], oldest);
        out.family(
            "mutations_open_by_time_left",
            "gauge",
            "Open mutations by the business time left before their deadline, in werkdagen",
        );
        let mut bands = [0u64; TIME_LEFT_BANDS.len() + 1];
        for m in &self.open {
            let band = TIME_LEFT_BANDS
                .iter()
                .position(|(_, below)| m.standing.left() < *below)
                .unwrap_or(TIME_LEFT_BANDS.len());
            bands[band] += 1;
        }
        let names = TIME_LEFT_BANDS
            .iter()
            .map(|(name, _)| *name)
            .chain([TIME_LEFT_REST]);
        for (name, count) in names.zip(bands) {
            out.sample(
                "mutations_open_by_time_left",
                &[("time_left", name)],
                count as f64,
            );
        }
        out.family(
            "mutations_at_risk",
            "gauge",
            "Open mutations not yet overdue with less business time left than sla.at_risk_werkdagen",
        );
        let at_risk = self
            .open
            .iter()
            .filter(|m| matches!(m.standing, Standing::AtRisk { .. }))
            .count();
        out.sample("mutations_at_risk", &[], at_risk as f64);
        out.family(
            "mutations_overdue",
            "gauge",
            "Open mutations past their deadline",
        );
        let overdue = self
            .open
            .iter()
            .filter(|m| matches!(m.standing, Standing::Overdue { .. }))
            .count();
        out.sample("mutations_overdue", &[], overdue as f64);
    }

    fn periods(&self, out: &mut Exposition) {
        let periods = [("rolling", &self.rolling), ("quarter", &self.quarter)];
        out.family(
            "sla_period_mutations",
            "gauge",
            "Valid mutations completed in the period (rolling window or current quarter), by outcome",
        );
        for (window, period) in periods {
            for list in ListKind::ALL {
                for (slo, counts) in [("met", &period.met), ("breached", &period.breached)] {
                    let count = counts.get(&list).copied().unwrap_or(0);
                    let labels = [("window", window), ("list", list.as_str()), ("slo", slo)];
                    out.sample("sla_period_mutations", &labels, count as f64);
                }
            }
        }
        type Figure = fn(&Period) -> f64;
        let figures: [(&str, &str, Figure); 4] = [
            (
                "sla_compliance_ratio",
                "Share of the period's valid completed mutations that met their deadline (1 when none)",
                Period::compliance,
            ),
            (
                "sla_error_budget_remaining",
                "Breaches the period may still have: 5 % of its completed mutations minus its breaches",
                Period::budget_remaining,
            ),
            (
                "sla_error_budget_remaining_ratio",
                "Share of the period's error budget left (1 untouched, 0 spent, negative overspent)",
                Period::budget_remaining_ratio,
            ),
            (
                "sla_projected_compliance_ratio",
                "Compliance of the period if open mutations at risk or overdue breach and the others meet",
                Period::projected_compliance,
            ),
        ];
        for (name, help, figure) in figures {
            out.family(name, "gauge", help);
            for (window, period) in periods {
                out.sample(name, &[("window", window)], figure(period));
            }
        }
        out.family(
            "sla_target_ratio",
            "gauge",
            "The SLA's target share of valid mutations within their deadline",
        );
        out.sample("sla_target_ratio", &[], SLA_TARGET);
    }
}

fn borrowed<'a>(labels: &'a [(&'a str, String); 3]) -> [(&'a str, &'a str); 3] {
    labels.each_ref().map(|(k, v)| (*k, v.as_str()))
}
