//! The append-only audit log: a record written inside the transaction of what it records,
//! and the reader's filters.

use async_trait::async_trait;

use super::{Backend, RequiredColumns, Row, SqlStorage, Transaction, corrupt, query};
use crate::domain::{AuditOutcome, AuditRecord};
use crate::storage::{AuditQuery, AuditStore, StorageError};

pub(super) async fn insert_audit<T: Transaction>(
    tx: &mut T,
    record: &AuditRecord,
) -> Result<(), StorageError> {
    let record = &record.printable();
    tx.execute(
        query(
            "INSERT INTO audit_log (at, actor_subject, actor_fingerprint, role, action, object, \
             on_behalf_of, outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .instant(record.at)
        .text(record.actor_subject.as_str())
        .text(record.actor_fingerprint.as_deref())
        .text(record.role.as_deref())
        .text(record.action.as_str())
        .text(record.object.as_deref())
        .text(record.on_behalf_of.as_deref())
        .text(record.outcome.as_str())
        .text(record.reason.as_deref()),
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> AuditStore for SqlStorage<B> {
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await
    }

    async fn audit_records(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        self.0
            .fetch(
                query(
                    "SELECT at, actor_subject, actor_fingerprint, role, action, object, \
                     on_behalf_of, outcome, reason FROM audit_log WHERE ($1 IS NULL OR at >= $1) \
                     AND ($2 IS NULL OR at < $2) \
                     AND ($3 IS NULL OR actor_subject = $3 OR actor_fingerprint = $3) \
                     AND ($4 IS NULL OR substr(action, 1, length($4)) = $4) \
                     AND ($5 IS NULL OR object = $5) AND ($6 IS NULL OR outcome = $6) \
                     ORDER BY at DESC, id DESC LIMIT $7",
                )
                .instant(q.since)
                .instant(q.until)
                .text(q.actor.as_deref())
                .text(q.action.as_deref())
                .text(q.object.as_deref())
                .text(q.outcome.map(AuditOutcome::as_str))
                .int(i64::from(q.limit)),
            )
            .await?
            .iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: row.required_instant(0)?,
                    actor_subject: row.required_text(1)?,
                    actor_fingerprint: row.text(2)?,
                    role: row.text(3)?,
                    action: row.required_text(4)?,
                    object: row.text(5)?,
                    on_behalf_of: row.text(6)?,
                    outcome: row.required_text(7)?.parse().map_err(corrupt)?,
                    reason: row.text(8)?,
                })
            })
            .collect()
    }
}
