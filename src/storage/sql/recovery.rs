//! What a bundle carries besides versions, read for an export, and a restore's writes
//! (`RecoveryStore`), written once for both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::entries::lock_working_state;
use super::rows::{MUTATION_COLUMNS, list_of, mutation_row};
use super::versions::{RESTORE_COLUMNS, read_restores, supersede_current};
use super::{Backend, RequiredColumns, Row, SqlStorage, Transaction, corrupt, query};
use crate::domain::ListKind;
use crate::storage::{
    AuditRow, EntryRow, HeadRow, MutationRow, RecoveryStore, RestoreCounts, RestoreItem,
    RestoreItems, RestoreRecord, RestoredVersion, RetiredRow, StateLine, StorageError,
};

const AUDIT_COLUMNS: &str = "id, at, actor_subject, actor_fingerprint, role, action, object, \
     on_behalf_of, outcome, reason";

fn audit_row(row: &impl Row) -> Result<AuditRow, StorageError> {
    Ok(AuditRow {
        id: row.required_int(0)?,
        at: row.required_instant(1)?,
        actor_subject: row.required_text(2)?,
        actor_fingerprint: row.text(3)?,
        role: row.text(4)?,
        action: row.required_text(5)?,
        object: row.text(6)?,
        on_behalf_of: row.text(7)?,
        outcome: row.required_text(8)?.parse().map_err(corrupt)?,
        reason: row.text(9)?,
    })
}

async fn insert_restore<T: Transaction>(
    tx: &mut T,
    record: &RestoreRecord,
) -> Result<(), StorageError> {
    tx.execute(
        query(format!(
            "INSERT INTO restores ({RESTORE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING"
        ))
        .text(record.list.as_str())
        .instant(record.at)
        .int(record.after_volgnummer)
        .text(record.after_sha256.as_deref())
        .int(record.next_volgnummer)
        .instant(record.recovered_up_to),
    )
    .await?;
    Ok(())
}

/// A restored version as its list's newest: its body (or, purged, an empty placeholder that
/// says so), its row, and the version before it superseded, as a publication does.
async fn insert_version<T: Transaction>(
    tx: &mut T,
    restored: &RestoredVersion,
) -> Result<(), StorageError> {
    let stored = &restored.version;
    let record = &stored.record;
    let list = record.list.as_str();
    tx.execute(
        query(
            // A purged version may name a body that a later version still has: the bytes,
            // when they come, replace the placeholder.
            "INSERT INTO version_bodies (sha256, size_bytes, compression, compressed, purged_at) \
             VALUES ($1, $2, 'gzip', $3, $4) ON CONFLICT (sha256) DO UPDATE \
             SET size_bytes = excluded.size_bytes, compressed = excluded.compressed, \
             purged_at = NULL \
             WHERE version_bodies.purged_at IS NOT NULL AND excluded.purged_at IS NULL",
        )
        .text(record.body_sha256.as_str())
        .int(restored.body_size.unwrap_or(0))
        .bytes(&stored.body_gzip)
        .instant(
            restored
                .body_size
                .is_none()
                .then_some(record.purged_at)
                .flatten(),
        ),
    )
    .await?;
    let at = record.tijdstempel.instant();
    supersede_current(tx, record.list, at).await?;
    tx.execute(
        query(
            "INSERT INTO versions (list, volgnummer, tijdstempel, valid_from, expires_at, \
             grace_seconds, superseded_at, grace_until, header, body_sha256, sha256, \
             size_bytes, previous_sha256, signature, heartbeat, published_by, purged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .text(list)
        .int(record.volgnummer.get())
        .instant(at)
        .instant(record.valid_from)
        .instant(record.expires_at)
        .int(record.grace_seconds)
        .instant(record.superseded_at)
        .instant(record.grace_until)
        .bytes(&stored.header)
        .text(record.body_sha256.as_str())
        .text(record.sha256.as_str())
        .int(record.size_bytes)
        .text(record.previous_sha256.as_deref())
        .bytes(&stored.signature)
        .boolean(record.heartbeat)
        .text(restored.published_by.as_str())
        .instant(record.purged_at),
    )
    .await?;
    tx.execute(
        query(
            "UPDATE list_heads SET last_volgnummer = $1 WHERE list = $2 AND last_volgnummer < $1",
        )
        .int(record.volgnummer.get())
        .text(list),
    )
    .await?;
    Ok(())
}

/// A mutation row, over an earlier state of the same mutation.
async fn upsert_mutation<T: Transaction>(tx: &mut T, m: &MutationRow) -> Result<(), StorageError> {
    let columns: Vec<&str> = MUTATION_COLUMNS.split(", ").collect();
    let updates = columns
        .iter()
        .skip(1)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let values = (1..=columns.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    tx.execute(
        query(format!(
            "INSERT INTO mutations ({MUTATION_COLUMNS}) VALUES ({values}) \
             ON CONFLICT (id) DO UPDATE SET {updates}"
        ))
        .int(m.id)
        .text(m.list.as_str())
        .text(m.entry_key.as_str())
        .text(m.operation.as_str())
        .json(m.body.as_deref())
        .int(m.base_version)
        .text(m.on_behalf_of.as_str())
        .text(m.reference.as_str())
        .boolean(m.urgent)
        .instant(m.agreed_deadline)
        .instant(m.effective_from)
        .text(m.status.as_str())
        .text(m.submitted_by.as_str())
        .text(m.submitted_by_subject.as_str())
        .instant(m.submitted_at)
        .text(m.decided_by.as_deref())
        .text(m.decided_by_subject.as_deref())
        .instant(m.decided_at)
        .text(m.rejection_reason.as_deref())
        .instant(m.withdrawn_at)
        .instant(m.applied_at)
        .int(m.published_volgnummer)
        .instant(m.published_at)
        .instant(m.sla_deadline)
        .text(m.sla_calendar.as_deref())
        .text(m.sla_outcome.map(|o| o.as_str()))
        .instant(m.sla_completed_at)
        .float(m.sla_werkdagen)
        .text(m.sla_excluded_reason.as_deref()),
    )
    .await?;
    Ok(())
}

async fn insert_audit_row<T: Transaction>(tx: &mut T, a: &AuditRow) -> Result<(), StorageError> {
    tx.execute(
        query(format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .int(a.id)
        .instant(a.at)
        .text(a.actor_subject.as_str())
        .text(a.actor_fingerprint.as_deref())
        .text(a.role.as_deref())
        .text(a.action.as_str())
        .text(a.object.as_deref())
        .text(a.on_behalf_of.as_deref())
        .text(a.outcome.as_str())
        .text(a.reason.as_deref()),
    )
    .await?;
    Ok(())
}

async fn write_state_line<T: Transaction>(
    tx: &mut T,
    line: &StateLine,
) -> Result<(), StorageError> {
    match line {
        StateLine::Head(h) => {
            tx.execute(
                query(
                    "UPDATE list_heads SET last_volgnummer = $1, revision = $2, \
                     imported_volgnummer = $3, imported_at = $4 WHERE list = $5",
                )
                .int(h.last_volgnummer)
                .int(h.revision)
                .int(h.imported_volgnummer)
                .instant(h.imported_at)
                .text(h.list.as_str()),
            )
            .await?;
        }
        StateLine::Entry(e) => {
            tx.execute(
                query(
                    "INSERT INTO entries (list, entry_key, version, body, updated_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .text(e.list.as_str())
                .text(e.entry_key.as_str())
                .int(e.version)
                .json(e.body.as_deref())
                .instant(e.updated_at),
            )
            .await?;
        }
        StateLine::Retired(r) => {
            tx.execute(
                query(
                    "INSERT INTO retired_gegevensdienst_ids (gegevensdienst_id, retired_at) \
                     VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .text(r.gegevensdienst_id.as_str())
                .instant(r.retired_at),
            )
            .await?;
        }
        StateLine::Restore(r) => insert_restore(tx, r).await?,
    }
    Ok(())
}

#[async_trait]
impl<B: Backend> RecoveryStore for SqlStorage<B> {
    async fn mutations_changed_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<MutationRow>, StorageError> {
        let since = since.unwrap_or(DateTime::UNIX_EPOCH);
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE submitted_at >= $1 \
                     OR decided_at >= $1 OR withdrawn_at >= $1 OR applied_at >= $1 \
                     OR published_at >= $1 OR sla_completed_at >= $1 ORDER BY id"
                ))
                .instant(since),
            )
            .await?
            .iter()
            .map(mutation_row)
            .collect()
    }

    async fn audit_rows(
        &self,
        since: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<Vec<AuditRow>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE at >= $1 AND at < $2 ORDER BY id"
                ))
                .instant(since.unwrap_or(DateTime::UNIX_EPOCH))
                .instant(until),
            )
            .await?
            .iter()
            .map(audit_row)
            .collect()
    }

    async fn state_lines(&self) -> Result<Vec<StateLine>, StorageError> {
        let mut tx = self.0.begin_read().await?;
        let mut lines = Vec::new();
        for row in tx
            .fetch(query(
                "SELECT list, last_volgnummer, revision, imported_volgnummer, imported_at \
                 FROM list_heads ORDER BY list",
            ))
            .await?
        {
            lines.push(StateLine::Head(HeadRow {
                list: list_of(&row, 0)?,
                last_volgnummer: row.required_int(1)?,
                revision: row.required_int(2)?,
                imported_volgnummer: row.int(3)?,
                imported_at: row.instant(4)?,
            }));
        }
        let mut entries = tx
            .fetch(query(
                "SELECT list, entry_key, version, body, updated_at FROM entries",
            ))
            .await?
            .iter()
            .map(|row| {
                Ok(EntryRow {
                    list: list_of(row, 0)?,
                    entry_key: row.required_text(1)?,
                    version: row.required_int(2)?,
                    body: row.json(3)?,
                    updated_at: row.required_instant(4)?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        // In Rust's order, not the database's collation: the verifier checks it.
        entries.sort_by(|a, b| (a.list, &a.entry_key).cmp(&(b.list, &b.entry_key)));
        lines.extend(entries.into_iter().map(StateLine::Entry));
        for row in tx
            .fetch(query(
                "SELECT gegevensdienst_id, retired_at FROM retired_gegevensdienst_ids \
                 ORDER BY gegevensdienst_id",
            ))
            .await?
        {
            lines.push(StateLine::Retired(RetiredRow {
                gegevensdienst_id: row.required_text(0)?,
                retired_at: row.required_instant(1)?,
            }));
        }
        lines.extend(
            read_restores(&mut tx)
                .await?
                .into_iter()
                .map(StateLine::Restore),
        );
        tx.commit().await?;
        Ok(lines)
    }

    async fn holds_data(&self) -> Result<Option<String>, StorageError> {
        let checks = [
            ("published versions", "SELECT COUNT(*) FROM versions"),
            ("mutations", "SELECT COUNT(*) FROM mutations"),
            ("audit records", "SELECT COUNT(*) FROM audit_log"),
            ("list entries", "SELECT COUNT(*) FROM entries"),
            ("restore records", "SELECT COUNT(*) FROM restores"),
            (
                "numbered lists",
                "SELECT COUNT(*) FROM list_heads WHERE last_volgnummer > 0 OR revision > 0",
            ),
        ];
        for (what, sql) in checks {
            let count = self.0.fetch(query(sql)).await?;
            let count = count.first().map(|r| r.required_int(0)).transpose()?;
            if let Some(n) = count.filter(|n| *n > 0) {
                return Ok(Some(format!("{n} {what}")));
            }
        }
        Ok(None)
    }

    async fn lists_to_republish(&self) -> Result<Vec<(ListKind, i64)>, StorageError> {
        self.0
            .fetch(
                query(
                    "SELECT list, MAX(next_volgnummer) FROM restores WHERE republish = $1 \
                 GROUP BY list",
                )
                .boolean(true),
            )
            .await?
            .iter()
            .map(|row| Ok((list_of(row, 0)?, row.required_int(1)?)))
            .collect()
    }

    async fn restore_unfinished(&self) -> Result<bool, StorageError> {
        let rows = self
            .0
            .fetch(query("SELECT COUNT(*) FROM restore_in_progress"))
            .await?;
        Ok(rows
            .first()
            .map(|r| r.required_int(0))
            .transpose()?
            .is_some_and(|n| n > 0))
    }

    async fn restore_items(
        &self,
        items: &mut RestoreItems<'_>,
    ) -> Result<RestoreCounts, StorageError> {
        let mut tx = self.0.begin_write().await?;
        lock_working_state(&mut tx).await?;
        let started = tx
            .fetch_one(query("SELECT COUNT(*) FROM restore_in_progress"))
            .await?
            .required_int(0)?;
        if started == 0 {
            tx.execute(
                query("INSERT INTO restore_in_progress (started_at) VALUES ($1)")
                    .instant(Utc::now()),
            )
            .await?;
        }
        let mut counts = RestoreCounts::default();
        for item in items {
            match item.map_err(StorageError::RestoreSource)? {
                RestoreItem::Version(v) => {
                    insert_version(&mut tx, &v).await?;
                    counts.versions += 1;
                }
                RestoreItem::Mutation(m) => {
                    upsert_mutation(&mut tx, &m).await?;
                    counts.mutations += 1;
                }
                RestoreItem::Audit(a) => {
                    insert_audit_row(&mut tx, &a).await?;
                    counts.audit_records += 1;
                }
                RestoreItem::State(line) => {
                    write_state_line(&mut tx, &line).await?;
                    counts.state_lines += 1;
                }
                RestoreItem::LogLeaf(entry) => {
                    super::log::restore_leaf(&mut tx, &entry).await?;
                    counts.log_leaves += 1;
                }
            }
        }
        for statement in self.0.after_explicit_ids() {
            tx.fetch(query(*statement)).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn finish_restore(
        &self,
        records: &[RestoreRecord],
        republish: bool,
    ) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        lock_working_state(&mut tx).await?;
        super::log::append_unlogged(&mut tx).await?;
        for record in records {
            insert_restore(&mut tx, record).await?;
            tx.execute(
                query(
                    "UPDATE restores SET republish = $1 WHERE list = $2 AND next_volgnummer = $3",
                )
                .boolean(republish)
                .text(record.list.as_str())
                .int(record.next_volgnummer),
            )
            .await?;
            tx.execute(
                query("UPDATE list_heads SET last_volgnummer = $1 WHERE list = $2")
                    .int(record.next_volgnummer - 1)
                    .text(record.list.as_str()),
            )
            .await?;
        }
        tx.execute(query("DELETE FROM restore_in_progress")).await?;
        tx.commit().await
    }
}
