//! The Prometheus text format for the SLA families, whose values are computed from the
//! database at each scrape (a histogram among them, which the `prometheus` crate can only
//! count as events happen, not set): the format itself, then each family written from an
//! `SlaStatus` (`status.rs` computes it).

use std::fmt::Write;

use super::period::Period;
use super::status::{HISTOGRAM_BOUNDS, SlaStatus};
use super::{SLA_TARGET, Standing};
use crate::domain::{ListKind, MutationStatus, SlaOutcome};
use crate::storage::SlaTotal;

/// Text exposition format 0.0.4, names prefixed `stelselnode_`.
#[derive(Debug, Default)]
pub struct Exposition(String);

impl Exposition {
    /// Starts a metric family: `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP stelselnode_{name} {help}");
        let _ = writeln!(self.0, "# TYPE stelselnode_{name} {kind}");
    }

    /// One sample of the family started last; `name` carries a histogram's suffix.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.0, "stelselnode_{name}");
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`).
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        match value > 0.0 {
            true => "+Inf".into(),
            false => "-Inf".into(),
        }
    } else {
        format!("{value}")
    }
}

/// Bands of the time left before an open mutation's deadline, in werkdagen.
const TIME_LEFT_BANDS: [(&str, f64); 4] = [
    ("overdue", 0.0),
    ("0_to_0.5", 0.5),
    ("0.5_to_1", 1.0),
    ("1_to_2", 2.0),
];
const TIME_LEFT_REST: &str = "2_or_more";

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
                    let labels = labels(&number(*bound));
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
                let outcomes = period.list(list);
                for (slo, count) in [("met", outcomes.met), ("breached", outcomes.breached)] {
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
                |p| p.compliance().or_vacuous(),
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
                |p| p.projected_compliance().or_vacuous(),
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
