//! The SLA's figures as `/metrics` shows them, computed from the database when scraped
//! (their text is written in `exposition.rs`).
//!
//! Compliance = met / (met + breached) of the mutations completed in a period (excluded ones
//! do not count); 1 when none completed. The error budget of a period is 5 % of its
//! completed mutations; what remains is that minus the breaches. The projection counts the
//! open mutations at their likely outcome as well: one already overdue or at risk (less than
//! `at_risk_werkdagen` left) as a breach, every other one as met — the node publishes within
//! minutes of an approval, so an open mutation with time left is late only when its review
//! is, and at-risk is exactly when the loket is told to hurry.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::period::Period;
use super::{SlaError, SlaPolicy, SlaService, Standing};
use crate::calendar::{local_date, start_of};
use crate::domain::{ListKind, MutationStatus};
use crate::storage::SlaTotal;

/// The histogram's upper bounds in werkdagen; 2 is the SLA itself.
pub const HISTOGRAM_BOUNDS: [f64; 8] = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];

/// Where the business clock starts counting (`business_seconds_total`): fixed, so every
/// replica and every restart reports the same counter.
fn business_clock_origin() -> DateTime<Utc> {
    start_of(NaiveDate::from_ymd_opt(2020, 1, 1).expect("a valid date"))
}

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
                period.count(m.list, c.outcome);
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
