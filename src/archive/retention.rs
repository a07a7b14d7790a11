//! Retention (seed 003 rules 20 and 21, SPEC §7): the audit log is destroyed after the log
//! retention (12–15 months); a version's bytes are purged once its validity ended longer ago
//! than the archive retention (never shorter than the log retention), its record staying so
//! the hash chain still verifies. Run by `stelselnode retention run` and hourly by `serve`;
//! the database serialises runs of several replicas.

use std::sync::Arc;

use chrono::{DateTime, Months, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::RetentionConfig;
use crate::domain::{AuditOutcome, AuditRecord};
use crate::storage::{RetentionOutcome, RetentionStore, StorageError};

/// How often `serve` runs retention: often enough that nothing outlives its limit by more
/// than this, rarely enough to cost nothing.
const INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

pub struct Retention {
    storage: Arc<dyn RetentionStore>,
    clock: Arc<dyn Clock>,
    config: RetentionConfig,
}

impl Retention {
    pub fn new(
        storage: Arc<dyn RetentionStore>,
        clock: Arc<dyn Clock>,
        config: RetentionConfig,
    ) -> Self {
        Self {
            storage,
            clock,
            config,
        }
    }

    /// The instants before which audit records are destroyed and ended versions purged. A
    /// version is kept at least as long as the logs (rule 21: "niet korter dan de
    /// logbestanden"), whatever `archive_months` says.
    pub fn limits(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let back = |months: u32| {
            now.checked_sub_months(Months::new(months))
                .unwrap_or(DateTime::UNIX_EPOCH)
        };
        let (audit, archive) = (self.config.audit_months, self.config.archive_months);
        (back(audit), back(archive.max(audit)))
    }

    /// One run, recorded in the audit log with its counts only; `actor` names who ran it.
    pub async fn run(&self, actor: &str) -> Result<RetentionOutcome, StorageError> {
        let now = self.clock.now();
        let (audit_before, versions_before) = self.limits(now);
        let record = |outcome: RetentionOutcome| AuditRecord {
            at: now,
            actor_subject: actor.to_owned(),
            actor_fingerprint: None,
            role: None,
            action: "retention run".into(),
            object: None,
            on_behalf_of: None,
            outcome: AuditOutcome::Allowed,
            reason: Some(format!(
                "destroyed {} audit records from before {audit_before}; purged the bytes of {} \
                 versions whose validity ended before {versions_before} ({} bodies)",
                outcome.audit_records, outcome.versions, outcome.bodies
            )),
        };
        let outcome = self
            .storage
            .run_retention(audit_before, versions_before, now, &record)
            .await?;
        tracing::info!(
            audit_records = outcome.audit_records,
            versions = outcome.versions,
            bodies = outcome.bodies,
            "retention run"
        );
        Ok(outcome)
    }

    /// Runs retention every hour until the node stops; a failed run is logged and retried.
    pub async fn run_schedule(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.run("system:retention").await {
                tracing::warn!(error = %e, "retention run failed; trying again in an hour");
            }
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
