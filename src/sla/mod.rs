//! The 2-werkdagen mutation SLA as a service (SPEC §8, seed 001: "Valide mutaties worden in
//! 95 procent van de gevallen … binnen 2 werkdagen verwerkt").
//!
//! - `SlaPolicy` is pure: a new mutation's deadline, a completed one's outcome, the time left.
//! - `SlaService` does the I/O: it stores deadlines and outcomes (`settle_backlog`), reads
//!   what the metrics and the report show (`status`, `report`), and notifies the loket of an
//!   expected breach (`notify.rs`).
//!
//! The SLA clock starts at submission — or at `effective_from` when the submitter asked for
//! a later date, since the node may not publish before it — and stops at the first published
//! version that contains the change. The deadline is stored as the mutation is accepted,
//! with the calendar version that computed it; outcomes are stored when the node next looks
//! (after every publication and decision, at start, at every scrape). Both are written only
//! where still empty, so replicas computing the same mutation agree and never overwrite.
//!
//! Everything the metrics show is computed from the database when scraped, so the figures
//! are right straight after a restart and the same on every replica.

mod exposition;
mod notify;
mod period;
mod report;
mod status;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use exposition::exposition;
pub use notify::{Delivery, NotifyError};
pub use period::{Compliance, Outcomes, Period};
pub use report::{ListReport, ReportError, SlaReport};
pub use status::SlaStatus;

use crate::calendar::Werkdagen;
use crate::clock::Clock;
use crate::config::{NotifyConfig, SlaConfig};
use crate::domain::{
    MutationRecord, MutationSla, MutationStatus, SlaCompletion, SlaDeadline, SlaOutcome,
    round_werkdagen,
};
use crate::storage::{Storage, StorageError};

/// The processing time seed 001 promises for a valid mutation.
pub const SLA_WERKDAGEN: f64 = 2.0;
/// The share of valid mutations that must meet it.
pub const SLA_TARGET: f64 = 0.95;

/// The SLA's rules: deadlines and outcomes, in werkdagen.
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    pub werkdagen: Werkdagen,
    /// Less time left than this makes an open mutation at risk.
    pub at_risk_werkdagen: f64,
    /// The rolling window of the compliance metrics.
    pub rolling_window: chrono::Duration,
}

impl SlaPolicy {
    pub fn new(config: &SlaConfig) -> Self {
        Self {
            werkdagen: Werkdagen::new(config.extra_closed_days.iter().copied()),
            at_risk_werkdagen: config.at_risk_werkdagen,
            rolling_window: chrono::Duration::days(i64::from(config.rolling_window_days)),
        }
    }

    /// When the SLA clock starts: at submission, or at a later `effective_from`.
    pub fn clock_start(
        submitted_at: DateTime<Utc>,
        effective_from: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        effective_from.map_or(submitted_at, |from| from.max(submitted_at))
    }

    /// The deadline of a mutation accepted at `submitted_at`: the agreed deadline of an urgent
    /// one (seed 001: "in overleg met Stichting MedMij bepaald"), otherwise 2 werkdagen after
    /// the clock starts.
    pub fn deadline(
        &self,
        submitted_at: DateTime<Utc>,
        effective_from: Option<DateTime<Utc>>,
        urgent: bool,
        agreed_deadline: Option<DateTime<Utc>>,
    ) -> SlaDeadline {
        let start = Self::clock_start(submitted_at, effective_from);
        let deadline = match (urgent, agreed_deadline) {
            (true, Some(agreed)) => agreed,
            _ => self.werkdagen.add_business_time(start, SLA_WERKDAGEN),
        };
        SlaDeadline {
            deadline,
            calendar: self.werkdagen.version(),
        }
    }

    /// The SLA columns still to store for `record`: a deadline when it has none (stored
    /// before the SLA was), and its outcome once it completed.
    pub fn settle(&self, record: &MutationRecord) -> MutationSla {
        let deadline = match &record.sla.deadline {
            Some(d) => d.clone(),
            None => self.deadline(
                record.submitted_at,
                record.effective_from,
                record.urgent,
                record.agreed_deadline,
            ),
        };
        let completion = match &record.sla.completion {
            Some(c) => Some(c.clone()),
            None => self.completion(record, &deadline),
        };
        MutationSla {
            deadline: Some(deadline),
            completion,
        }
    }

    fn completion(&self, record: &MutationRecord, deadline: &SlaDeadline) -> Option<SlaCompletion> {
        let completed_at = record.completed_at()?;
        let excluded = |reason: String| SlaCompletion {
            outcome: SlaOutcome::Excluded,
            completed_at,
            werkdagen: None,
            excluded_reason: Some(reason),
        };
        Some(match record.status {
            MutationStatus::Published => {
                let start = Self::clock_start(record.submitted_at, record.effective_from);
                SlaCompletion {
                    outcome: match completed_at <= deadline.deadline {
                        true => SlaOutcome::Met,
                        false => SlaOutcome::Breached,
                    },
                    completed_at,
                    werkdagen: Some(round_werkdagen(
                        self.werkdagen.business_time(start, completed_at),
                    )),
                    excluded_reason: None,
                }
            }
            MutationStatus::Rejected => excluded(format!(
                "rejected: {}",
                record
                    .rejection_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            )),
            MutationStatus::Withdrawn => excluded("withdrawn by the submitter".into()),
            MutationStatus::Submitted | MutationStatus::Approved => return None,
        })
    }

    /// Every deadline at risk at `now` lies before this instant (`werkdagen_left` grows with
    /// the deadline, and reaches `at_risk_werkdagen` here at the earliest).
    pub fn at_risk_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.werkdagen
            .add_business_time(now, self.at_risk_werkdagen)
            + chrono::Duration::seconds(1)
    }

    /// Werkdagen left before `deadline` at `now`; negative once it passed (by the business
    /// time since).
    pub fn werkdagen_left(&self, deadline: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
        match now <= deadline {
            true => self.werkdagen.business_time(now, deadline),
            false => -self.werkdagen.business_time(deadline, now),
        }
    }

    /// Where an open mutation with `deadline` stands at `now`: the one place "at risk" is
    /// decided, for the work queue, the notifications and the figures alike.
    pub fn standing(&self, deadline: DateTime<Utc>, now: DateTime<Utc>) -> Standing {
        let left = self.werkdagen_left(deadline, now);
        if left < 0.0 {
            Standing::Overdue { by: -left }
        } else if left < self.at_risk_werkdagen {
            Standing::AtRisk { left }
        } else {
            Standing::InTime { left }
        }
    }
}

/// An open mutation against its deadline, in werkdagen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Standing {
    /// At least `sla.at_risk_werkdagen` left.
    InTime { left: f64 },
    /// Less than `sla.at_risk_werkdagen` left: the loket is told to hurry.
    AtRisk { left: f64 },
    /// The deadline passed, `by` werkdagen ago.
    Overdue { by: f64 },
}

impl Standing {
    /// Werkdagen left; negative once overdue.
    pub fn left(self) -> f64 {
        match self {
            Standing::InTime { left } | Standing::AtRisk { left } => left,
            Standing::Overdue { by } => -by,
        }
    }

    /// Expected to miss its deadline unless someone acts: at risk or already overdue. The
    /// notification goes out and the projection counts a breach.
    pub fn expects_breach(self) -> bool {
        !matches!(self, Standing::InTime { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SlaError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The SLA's I/O: storing deadlines and outcomes, the figures, notifications.
pub struct SlaService {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    policy: Arc<SlaPolicy>,
    notify: NotifyConfig,
    delivery: Delivery,
    /// Wakes the background task early: a publication or decision happened.
    wake: tokio::sync::Notify,
}

/// Mutations settled per read of the backlog.
const BACKLOG_BATCH: u32 = 500;

impl SlaService {
    pub fn new(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        policy: Arc<SlaPolicy>,
        notify: NotifyConfig,
    ) -> Result<Self, NotifyError> {
        Ok(Self {
            delivery: Delivery::new(&notify)?,
            storage,
            clock,
            policy,
            notify,
            wake: tokio::sync::Notify::new(),
        })
    }

    pub fn policy(&self) -> &SlaPolicy {
        &self.policy
    }

    /// Stores every deadline and outcome still missing; returns how many mutations it
    /// settled.
    pub async fn settle_backlog(&self) -> Result<usize, SlaError> {
        let mut after = 0;
        let mut settled = 0;
        loop {
            let batch = self.storage.sla_backlog(after, BACKLOG_BATCH).await?;
            let Some(last) = batch.last() else {
                return Ok(settled);
            };
            after = last.id;
            for record in &batch {
                let sla = self.policy.settle(record);
                if sla != record.sla {
                    self.storage.record_sla(record.id, &sla).await?;
                    settled += 1;
                }
            }
        }
    }

    /// Something changed (a publication, a decision): look at the SLA soon.
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// Settles, notifies and delivers, then again every `notify.check_interval_seconds` or
    /// when woken, until the node stops. Failures are logged and tried again next time.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = std::time::Duration::from_secs(self.notify.check_interval_seconds);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "SLA bookkeeping failed; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One round of the background task.
    pub async fn tick(&self) -> Result<(), SlaError> {
        self.settle_backlog().await?;
        self.queue_at_risk().await?;
        self.deliver_due().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
