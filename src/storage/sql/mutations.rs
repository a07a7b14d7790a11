//! Mutations: one open per entry, the deciding transaction with its re-check, due changes
//! applied or rejected, and the reads (all, one, the open queue).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::insert_audit;
use super::entries::{lock_working_state, read_snapshot, write_change};
use super::rows::{MUTATION_COLUMNS, list_of, mutation_from_row};
use super::{Backend, Query, RequiredColumns, SqlStorage, Transaction, query};
use crate::domain::{
    AuditRecord, Decision, ListKind, MutationDecision, MutationRecord, MutationStatus, NewMutation,
};
use crate::storage::{MutationQuery, MutationStore, OpenQueueQuery, Recheck, StorageError};

pub(super) const OPEN_MUTATION: &str = "SELECT id FROM mutations WHERE list = $1 AND entry_key = $2 \
     AND (status = 'submitted' OR (status = 'approved' AND applied_at IS NULL))";

/// The name of the partial unique index that keeps one open mutation per entry.
pub(super) const ONE_OPEN_PER_ENTRY: &str = "mutations_one_open_per_entry";

/// A mutation (locked on PostgreSQL) with its stored body.
pub(super) async fn read_mutation<T: Transaction>(
    tx: &mut T,
    id: i64,
) -> Result<(MutationRecord, Option<String>), StorageError> {
    let row = tx
        .fetch_optional(
            query(format!(
                "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = $1"
            ))
            .int(id)
            .for_update(),
        )
        .await?
        .ok_or(StorageError::UnknownMutation(id))?;
    mutation_from_row(&row)
}

/// Applies an approved mutation's change and records when.
pub(super) async fn apply_mutation<T: Transaction>(
    tx: &mut T,
    record: &MutationRecord,
    body: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    write_change(
        tx,
        record.list,
        &record.entry_key,
        body,
        record.base_version,
        at,
    )
    .await?;
    tx.execute(
        query("UPDATE mutations SET applied_at = $1 WHERE id = $2")
            .instant(at)
            .int(record.id),
    )
    .await?;
    Ok(())
}

/// Stores a decision's own columns.
pub(super) fn decision_update<'a>(d: &'a MutationDecision) -> Query<'a> {
    match &d.decision {
        Decision::Approve => query(
            "UPDATE mutations SET status = 'approved', decided_by = $1, decided_by_subject = $2, \
             decided_at = $3 WHERE id = $4",
        )
        .text(d.by.as_str())
        .text(d.by_subject.as_str())
        .instant(d.at)
        .int(d.id),
        Decision::Reject { reason } => query(
            "UPDATE mutations SET status = 'rejected', decided_by = $1, decided_by_subject = $2, \
             decided_at = $3, rejection_reason = $5 WHERE id = $4",
        )
        .text(d.by.as_str())
        .text(d.by_subject.as_str())
        .instant(d.at)
        .int(d.id)
        .text(reason.as_str()),
        Decision::Withdraw => {
            query("UPDATE mutations SET status = 'withdrawn', withdrawn_at = $1 WHERE id = $2")
                .instant(d.at)
                .int(d.id)
        }
    }
}

/// Whether a database error is the one-open-mutation-per-entry index refusing an insert.
pub(super) fn is_second_open_mutation(e: &StorageError) -> bool {
    matches!(e, StorageError::Database(sqlx::Error::Database(e))
        if e.constraint() == Some(ONE_OPEN_PER_ENTRY))
}

/// Approves, rejects or withdraws a mutation, with its audit record.
pub(super) async fn decide<T: Transaction>(
    tx: &mut T,
    d: &MutationDecision,
    audit: &AuditRecord,
    recheck: Option<&Recheck<'_>>,
) -> Result<MutationRecord, StorageError> {
    let revisions = match recheck {
        Some(_) => Some(lock_working_state(tx).await?),
        None => None,
    };
    let (record, body) = read_mutation(tx, d.id).await?;
    d.check(&record)?;
    if let (Some(recheck), Some(revisions)) = (recheck, revisions) {
        let snapshot = match recheck
            .cached
            .clone()
            .filter(|s| s.at_revisions(&revisions))
        {
            Some(cached) => cached,
            None => Arc::new(read_snapshot(tx, recheck.cached.as_deref()).await?),
        };
        (recheck.rules)(&record, &snapshot)?;
    }
    tx.execute(decision_update(d)).await?;
    if d.applies_now(&record) {
        apply_mutation(tx, &record, body.as_deref(), d.at).await?;
    }
    insert_audit(tx, audit).await?;
    Ok(read_mutation(tx, d.id).await?.0)
}

/// Applies one approved mutation whose `effective_from` has come, or rejects it when it no
/// longer fits; `None` when another replica got there first.
pub(super) async fn apply_due<T: Transaction>(
    tx: &mut T,
    id: i64,
    at: DateTime<Utc>,
) -> Result<Option<MutationRecord>, StorageError> {
    lock_working_state(tx).await?;
    let (record, body) = read_mutation(tx, id).await?;
    if record.applied_at.is_some() || record.status != MutationStatus::Approved {
        return Ok(None);
    }
    match apply_mutation(tx, &record, body.as_deref(), at).await {
        Ok(()) => {}
        Err(e @ StorageError::StaleEntry { .. }) => {
            let reason = format!("no longer fits when it became effective: {e}");
            tx.execute(
                query(
                    "UPDATE mutations SET status = 'rejected', rejection_reason = $1 WHERE id = $2",
                )
                .text(reason.as_str())
                .int(id),
            )
            .await?;
        }
        Err(e) => return Err(e),
    }
    Ok(Some(read_mutation(tx, id).await?.0))
}

#[async_trait]
impl<B: Backend> MutationStore for SqlStorage<B> {
    async fn submit_mutation(
        &self,
        m: &NewMutation,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError> {
        let (list, key) = (m.change.list(), m.change.key());
        let open = |id| StorageError::OpenMutation {
            list,
            key: key.to_owned(),
            id,
        };
        let open_query = || query(OPEN_MUTATION).text(list.as_str()).text(key);
        let mut tx = self.0.begin_write().await?;
        if let Some(row) = tx.fetch_optional(open_query()).await? {
            return Err(open(row.required_int(0)?));
        }
        let current = tx
            .fetch_optional(
                query("SELECT version FROM entries WHERE list = $1 AND entry_key = $2")
                    .text(list.as_str())
                    .text(key),
            )
            .await?
            .map(|row| row.required_int(0))
            .transpose()?
            .unwrap_or(0);
        if current != m.change.base_version() {
            return Err(StorageError::StaleEntry {
                list,
                key: key.to_owned(),
                expected: m.change.base_version(),
                current,
            });
        }
        let body = m.change.body_json();
        let inserted = tx
            .fetch_one(
                query(
                    "INSERT INTO mutations (list, entry_key, operation, body, base_version, \
                     on_behalf_of, reference, urgent, agreed_deadline, effective_from, status, \
                     submitted_by, submitted_by_subject, submitted_at, sla_deadline, \
                     sla_calendar) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'submitted', \
                     $11, $12, $13, $14, $15) RETURNING id",
                )
                .text(list.as_str())
                .text(key)
                .text(m.change.operation().as_str())
                .json(body.as_deref())
                .int(m.change.base_version())
                .text(m.on_behalf_of.as_str())
                .text(m.reference.as_str())
                .boolean(m.urgent)
                .instant(m.agreed_deadline)
                .instant(m.effective_from)
                .text(m.submitted_by.as_str())
                .text(m.submitted_by_subject.as_str())
                .instant(m.submitted_at)
                .instant(m.sla.deadline)
                .text(m.sla.calendar.as_str()),
            )
            .await;
        let id = match inserted {
            Ok(row) => row.required_int(0)?,
            // A concurrent submission for the same entry committed first: the unique index
            // saw it, this transaction's snapshot (PostgreSQL) did not.
            Err(e) if is_second_open_mutation(&e) => {
                drop(tx);
                let id = self.0.fetch(open_query()).await?;
                return Err(open(
                    id.first()
                        .map(|r| r.required_int(0))
                        .transpose()?
                        .unwrap_or(0),
                ));
            }
            Err(e) => return Err(e),
        };
        insert_audit(&mut tx, &audit.about(format!("mutations/{id}"))).await?;
        let (record, _) = read_mutation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn decide_mutation(
        &self,
        d: &MutationDecision,
        audit: &AuditRecord,
        recheck: Option<&Recheck<'_>>,
    ) -> Result<MutationRecord, StorageError> {
        let mut tx = self.0.begin_write().await?;
        let record = decide(&mut tx, d, audit, recheck).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn apply_due_mutations(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        let due = self
            .0
            .fetch(
                query(
                    "SELECT id FROM mutations WHERE status = 'approved' AND applied_at IS NULL \
                     AND effective_from <= $1 ORDER BY effective_from, id",
                )
                .instant(at),
            )
            .await?;
        let mut done = Vec::new();
        for row in due {
            let mut tx = self.0.begin_write().await?;
            let applied = apply_due(&mut tx, row.required_int(0)?, at).await?;
            tx.commit().await?;
            done.extend(applied);
        }
        Ok(done)
    }

    async fn unpublished_changes(&self) -> Result<Vec<(ListKind, DateTime<Utc>)>, StorageError> {
        self.0
            .fetch(query(
                "SELECT list, MIN(applied_at) FROM mutations \
                 WHERE status = 'approved' AND applied_at IS NOT NULL GROUP BY list ORDER BY list",
            ))
            .await?
            .iter()
            .map(|row| Ok((list_of(row, 0)?, row.required_instant(1)?)))
            .collect()
    }

    async fn mutations(&self, q: &MutationQuery) -> Result<Vec<MutationRecord>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE ($1 IS NULL OR status = $1) \
                     AND ($2 IS NULL OR list = $2) \
                     AND ($3 IS NULL OR submitted_by = $3 OR submitted_by_subject = $3) \
                     AND ($4 IS NULL OR submitted_at < $4) AND ($5 IS NULL OR submitted_at >= $5) \
                     ORDER BY submitted_at DESC, id DESC LIMIT $6"
                ))
                .text(q.status.map(MutationStatus::as_str))
                .text(q.list.map(ListKind::as_str))
                .text(q.submitter.as_deref())
                .instant(q.submitted_before)
                .instant(q.submitted_after)
                .int(i64::from(q.limit)),
            )
            .await?
            .iter()
            .map(|row| Ok(mutation_from_row(row)?.0))
            .collect()
    }

    async fn open_mutations(
        &self,
        q: &OpenQueueQuery,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        // Case-insensitive "contains": the pattern is lowered here, the column in SQL
        // (SQLite lowers ASCII letters only; PostgreSQL every letter).
        let contains = |part: &Option<String>| {
            part.as_deref().map(|p| {
                let escaped: String = p
                    .to_lowercase()
                    .chars()
                    .flat_map(|c| match c {
                        '%' | '_' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                format!("%{escaped}%")
            })
        };
        let (on_behalf_of, submitter) = (contains(&q.on_behalf_of), contains(&q.submitter_subject));
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations \
                     WHERE status IN ('submitted', 'approved') AND ($1 IS NULL OR status = $1) \
                     AND ($2 IS NULL OR list = $2) \
                     AND ($3 IS NULL OR LOWER(on_behalf_of) LIKE $3 ESCAPE '\\') \
                     AND ($4 IS NULL OR LOWER(submitted_by_subject) LIKE $4 ESCAPE '\\') \
                     AND ($5 IS NULL OR submitted_at <= $5) \
                     ORDER BY sla_deadline IS NULL, sla_deadline, id LIMIT $6 OFFSET $7"
                ))
                .text(q.status.map(MutationStatus::as_str))
                .text(q.list.map(ListKind::as_str))
                .text(on_behalf_of.as_deref())
                .text(submitter.as_deref())
                .instant(q.submitted_before)
                .int(i64::from(q.limit))
                .int(i64::from(q.offset)),
            )
            .await?
            .iter()
            .map(|row| Ok(mutation_from_row(row)?.0))
            .collect()
    }

    async fn mutation(&self, id: i64) -> Result<Option<MutationRecord>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = $1"
                ))
                .int(id),
            )
            .await?
            .first()
            .map(|row| Ok(mutation_from_row(row)?.0))
            .transpose()
    }
}
