//! The mutations a period completed, counted once per list by outcome, and what the SLA
//! makes of them: compliance, the error budget, the projection. The report
//! (`report.rs`) and the figures of `/metrics` (`status.rs`) both count with this.
//!
//! Compliance = met / (met + breached); excluded mutations (rejected, withdrawn) do not
//! count. A period in which no valid mutation completed has no compliance (`None`): the
//! report says so. The figures show 1 for it, because a gauge needs a number and nothing
//! was late (`Compliance::or_vacuous`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::SLA_TARGET;
use crate::domain::{ListKind, SlaOutcome};

/// Completed mutations by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub met: u64,
    pub breached: u64,
    pub excluded: u64,
}

impl Outcomes {
    pub fn count(&mut self, outcome: SlaOutcome) {
        match outcome {
            SlaOutcome::Met => self.met += 1,
            SlaOutcome::Breached => self.breached += 1,
            SlaOutcome::Excluded => self.excluded += 1,
        }
    }

    /// Met and breached: the mutations the SLA judges.
    pub fn valid(&self) -> u64 {
        self.met + self.breached
    }

    pub fn compliance(&self) -> Compliance {
        Compliance::of(self.met, self.valid())
    }

    fn add(self, other: Outcomes) -> Outcomes {
        Outcomes {
            met: self.met + other.met,
            breached: self.breached + other.breached,
            excluded: self.excluded + other.excluded,
        }
    }
}

/// The share of valid mutations that met their deadline; `None` when there were none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Compliance(Option<f64>);

impl Compliance {
    fn of(met: u64, valid: u64) -> Self {
        Self((valid > 0).then(|| met as f64 / valid as f64))
    }

    pub fn ratio(self) -> Option<f64> {
        self.0
    }

    /// For a gauge: 1 when nothing was judged (nothing was late).
    pub fn or_vacuous(self) -> f64 {
        self.0.unwrap_or(1.0)
    }
}

/// Completed and open mutations of one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Period {
    lists: BTreeMap<ListKind, Outcomes>,
    /// Open mutations expected to meet / to breach (`Standing::expects_breach`).
    pub open_met: u64,
    pub open_breached: u64,
}

impl Period {
    /// Counts one completed mutation.
    pub fn count(&mut self, list: ListKind, outcome: SlaOutcome) {
        self.lists.entry(list).or_default().count(outcome);
    }

    pub fn list(&self, list: ListKind) -> Outcomes {
        self.lists.get(&list).copied().unwrap_or_default()
    }

    /// Every list together.
    pub fn total(&self) -> Outcomes {
        self.lists
            .values()
            .fold(Outcomes::default(), |all, o| all.add(*o))
    }

    pub fn compliance(&self) -> Compliance {
        self.total().compliance()
    }

    /// Breaches the period may still have: 5 % of its valid completed mutations, minus its
    /// breaches (negative once overspent).
    pub fn budget_remaining(&self) -> f64 {
        let total = self.total();
        (1.0 - SLA_TARGET) * total.valid() as f64 - total.breached as f64
    }

    /// The share of the budget left: 1 untouched (or nothing judged), 0 spent, below 0
    /// overspent.
    pub fn budget_remaining_ratio(&self) -> f64 {
        match self.total().valid() {
            0 => 1.0,
            valid => self.budget_remaining() / ((1.0 - SLA_TARGET) * valid as f64),
        }
    }

    /// Compliance with the open mutations counted at their likely outcome.
    pub fn projected_compliance(&self) -> Compliance {
        let total = self.total();
        let met = total.met + self.open_met;
        Compliance::of(met, met + total.breached + self.open_breached)
    }
}
