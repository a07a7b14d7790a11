//! Retention's statements (`RetentionStore`), written once for both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::insert_audit;
use super::entries::lock_working_state;
use super::{Backend, SqlStorage, Transaction, query};
use crate::domain::AuditRecord;
use crate::storage::{RetentionOutcome, RetentionStore, StorageError};

#[async_trait]
impl<B: Backend> RetentionStore for SqlStorage<B> {
    async fn run_retention(
        &self,
        audit_before: DateTime<Utc>,
        versions_before: DateTime<Utc>,
        at: DateTime<Utc>,
        audit: &(dyn Fn(RetentionOutcome) -> AuditRecord + Send + Sync),
    ) -> Result<RetentionOutcome, StorageError> {
        let mut tx = self.0.begin_write().await?;
        // Every list head, as a publication takes them: one run at a time across replicas,
        // and never beside a publication that supersedes a version.
        lock_working_state(&mut tx).await?;
        let audit_records = tx
            .execute(query("DELETE FROM audit_log WHERE at < $1").instant(audit_before))
            .await?;
        // A superseded version's validity ends at its grace_until (or expiry, if sooner).
        let versions = tx
            .execute(
                query(
                    "UPDATE versions SET purged_at = $1 WHERE purged_at IS NULL \
                     AND superseded_at IS NOT NULL AND (expires_at < $2 OR grace_until < $2)",
                )
                .instant(at)
                .instant(versions_before),
            )
            .await?;
        let bodies = tx
            .execute(
                query(
                    "UPDATE version_bodies SET compressed = $1, purged_at = $2 \
                     WHERE purged_at IS NULL AND NOT EXISTS (SELECT 1 FROM versions \
                     WHERE versions.body_sha256 = version_bodies.sha256 \
                     AND versions.purged_at IS NULL)",
                )
                .bytes(&[])
                .instant(at),
            )
            .await?;
        let outcome = RetentionOutcome {
            audit_records,
            versions,
            bodies,
        };
        let record = audit(outcome);
        insert_audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}
