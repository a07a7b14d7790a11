//! SQLite: one file, WAL, `synchronous = FULL` so that a committed transaction survives a
//! power cut; write transactions start with `BEGIN IMMEDIATE` so two writers queue on the
//! lock instead of failing half-way. Instants are microseconds since the epoch.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::{
    AuditOutcome, AuditQuery, AuditRecord, Decision, EntryChange, ImportOutcome, ListHead,
    ListSnapshot, MutationDecision, MutationQuery, MutationRecord, MutationStatus, NewMutation,
    NewVersion, Snapshot, StorageError, StoredVersion, WorkingState, by_list, conflict,
    mutation_kinds, removed_by_import, version_record, volgnummer_from_db, working_state_from_rows,
};
use crate::domain::{Lijst, ListKind, Tijdstempel, VersionRecord, Volgnummer};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStorage {
    pool: SqlitePool,
    /// One writer at a time, queued here rather than in SQLite's busy handler, which polls
    /// with sleeps of up to 100 ms: under concurrent submissions that sleep was the p99.
    writer: tokio::sync::Mutex<()>,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl SqliteStorage {
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StorageError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// A write transaction, with this process's writer turn (held until it is dropped).
    async fn begin_write(
        &self,
    ) -> Result<
        (
            tokio::sync::MutexGuard<'_, ()>,
            Transaction<'static, Sqlite>,
        ),
        StorageError,
    > {
        let turn = self.writer.lock().await;
        Ok((turn, self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }
}

async fn insert_audit(
    tx: &mut Transaction<'static, Sqlite>,
    record: &AuditRecord,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_subject, actor_fingerprint, role, action, object, \
         on_behalf_of, outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(micros(record.at))
    .bind(&record.actor_subject)
    .bind(&record.actor_fingerprint)
    .bind(&record.role)
    .bind(&record.action)
    .bind(&record.object)
    .bind(&record.on_behalf_of)
    .bind(record.outcome.as_str())
    .bind(&record.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The columns `version_from_row` reads, in order.
macro_rules! version_columns {
    () => {
        "versions.list, versions.volgnummer, versions.tijdstempel, versions.valid_from, \
         versions.expires_at, versions.grace_seconds, versions.superseded_at, versions.grace_until, \
         versions.sha256, versions.previous_sha256, versions.heartbeat, versions.size_bytes, \
         versions.body_sha256"
    };
}

fn version_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<VersionRecord, StorageError> {
    version_record(
        row.get(0),
        row.get(1),
        Tijdstempel::new(instant(row.get(2))),
        [instant(row.get(3)), instant(row.get(4))],
        row.get(5),
        [
            row.get::<Option<i64>, _>(6).map(instant),
            row.get::<Option<i64>, _>(7).map(instant),
        ],
        row.get(8),
        row.get(9),
        row.get(10),
        row.get(11),
        row.get(12),
    )
}

/// Writes one entry change if the entry is still at `base_version`; returns the new version.
async fn write_change(
    tx: &mut Transaction<'static, Sqlite>,
    list: ListKind,
    key: &str,
    body: Option<&str>,
    base_version: i64,
    at: DateTime<Utc>,
) -> Result<i64, StorageError> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT version FROM entries WHERE list = ? AND entry_key = ?")
            .bind(list.as_str())
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
    if current.unwrap_or(0) != base_version {
        return Err(conflict(list, key, base_version, current));
    }
    sqlx::query(
        "INSERT INTO entries (list, entry_key, version, body, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (list, entry_key) DO UPDATE SET version = excluded.version, \
         body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(list.as_str())
    .bind(key)
    .bind(base_version + 1)
    .bind(body)
    .bind(micros(at))
    .execute(&mut **tx)
    .await?;
    let removed = match body {
        None => vec![key.to_owned()],
        Some(_) => Vec::new(),
    };
    state_changed(tx, list, &removed, at).await?;
    Ok(base_version + 1)
}

/// The columns `mutation_from_row` reads, in order.
const MUTATION_COLUMNS: &str = "id, list, entry_key, operation, body, base_version, on_behalf_of, \
     reference, urgent, agreed_deadline, effective_from, status, submitted_by, submitted_by_subject, \
     submitted_at, decided_by, decided_by_subject, decided_at, rejection_reason, withdrawn_at, \
     applied_at, published_volgnummer, published_at";

fn mutation_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<MutationRecord, StorageError> {
    let at = |i: usize| row.get::<Option<i64>, _>(i).map(instant);
    let (list, operation, status, entry) =
        mutation_kinds(row.get(1), row.get(3), row.get(11), row.get(4))?;
    Ok(MutationRecord {
        id: row.get(0),
        list,
        entry_key: row.get(2),
        operation,
        entry,
        base_version: row.get(5),
        on_behalf_of: row.get(6),
        reference: row.get(7),
        urgent: row.get(8),
        agreed_deadline: at(9),
        effective_from: at(10),
        status,
        submitted_by: row.get(12),
        submitted_by_subject: row.get(13),
        submitted_at: instant(row.get(14)),
        decided_by: row.get(15),
        decided_by_subject: row.get(16),
        decided_at: at(17),
        rejection_reason: row.get(18),
        withdrawn_at: at(19),
        applied_at: at(20),
        published_volgnummer: row.get(21),
        published_at: at(22),
    })
}

/// A mutation with its stored body (the exact JSON to write into the working state).
async fn read_mutation(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
) -> Result<(MutationRecord, Option<String>), StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StorageError::UnknownMutation(id))?;
    Ok((mutation_from_row(&row)?, row.get(4)))
}

/// Applies an approved mutation's change and records when.
async fn apply_mutation(
    tx: &mut Transaction<'static, Sqlite>,
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
    sqlx::query("UPDATE mutations SET applied_at = ? WHERE id = ?")
        .bind(micros(at))
        .bind(record.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The open mutation of an entry, if any (see `mutations_one_open_per_entry`).
async fn open_mutation(
    tx: &mut Transaction<'static, Sqlite>,
    list: ListKind,
    key: &str,
) -> Result<Option<i64>, StorageError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM mutations WHERE list = ? AND entry_key = ? \
         AND (status = 'submitted' OR (status = 'approved' AND applied_at IS NULL))",
    )
    .bind(list.as_str())
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Records that a list's working state changed; a GNL removal retires the id for good.
async fn state_changed(
    tx: &mut Transaction<'static, Sqlite>,
    list: ListKind,
    removed: &[String],
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE list_heads SET revision = revision + 1 WHERE list = ?")
        .bind(list.as_str())
        .execute(&mut **tx)
        .await?;
    if list == ListKind::Gnl {
        for id in removed {
            sqlx::query(
                "INSERT INTO retired_gegevensdienst_ids (gegevensdienst_id, retired_at) VALUES (?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(micros(at))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn read_head(
    executor: impl sqlx::SqliteExecutor<'_>,
    list: ListKind,
) -> Result<ListHead, StorageError> {
    let row = sqlx::query(
        "SELECT last_volgnummer, imported_volgnummer, imported_at FROM list_heads WHERE list = ?",
    )
    .bind(list.as_str())
    .fetch_one(executor)
    .await?;
    Ok(ListHead {
        list,
        last_volgnummer: volgnummer_from_db(list, row.get(0))?,
        imported_volgnummer: volgnummer_from_db(list, row.get::<Option<i64>, _>(1).unwrap_or(0))?,
        imported_at: row.get::<Option<i64>, _>(2).map(instant),
    })
}

#[async_trait]
impl super::Storage for SqliteStorage {
    async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn working_state(&self, list: ListKind) -> Result<WorkingState, StorageError> {
        let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
            "SELECT entry_key, body, version FROM entries WHERE list = ?",
        )
        .bind(list.as_str())
        .fetch_all(&self.pool)
        .await?;
        working_state_from_rows(list, rows)
    }

    async fn apply_change(
        &self,
        change: &EntryChange,
        at: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let body = change.body();
        let version = write_change(
            &mut tx,
            change.list(),
            change.key(),
            body.as_deref(),
            change.base_version(),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn import_list(
        &self,
        list: &Lijst,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<ImportOutcome, StorageError> {
        let kind = list.kind();
        let rows = list.entries.to_json_rows();
        let (_turn, mut tx) = self.begin_write().await?;
        let live: Vec<String> =
            sqlx::query_scalar("SELECT entry_key FROM entries WHERE list = ? AND body IS NOT NULL")
                .bind(kind.as_str())
                .fetch_all(&mut *tx)
                .await?;
        let removed = removed_by_import(live, &rows);
        for key in &removed {
            sqlx::query(
                "UPDATE entries SET body = NULL, version = version + 1, updated_at = ? \
                 WHERE list = ? AND entry_key = ?",
            )
            .bind(micros(at))
            .bind(kind.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        let mut changed = 0;
        for (key, body) in &rows {
            changed += sqlx::query(
                "INSERT INTO entries (list, entry_key, version, body, updated_at) VALUES (?, ?, 1, ?, ?) \
                 ON CONFLICT (list, entry_key) DO UPDATE SET version = entries.version + 1, \
                 body = excluded.body, updated_at = excluded.updated_at \
                 WHERE entries.body IS NOT excluded.body",
            )
            .bind(kind.as_str())
            .bind(key)
            .bind(body)
            .bind(micros(at))
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
        }
        if changed > 0 || !removed.is_empty() {
            state_changed(&mut tx, kind, &removed, at).await?;
        }
        sqlx::query(
            "UPDATE list_heads SET last_volgnummer = max(last_volgnummer, ?), \
             imported_volgnummer = ?, imported_at = ? WHERE list = ?",
        )
        .bind(list.volgnummer.get())
        .bind(list.volgnummer.get())
        .bind(micros(at))
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        let head = read_head(&mut *tx, kind).await?;
        tx.commit().await?;
        Ok(ImportOutcome {
            entries: rows.len(),
            removed: removed.len(),
            changed,
            head,
        })
    }

    async fn list_head(&self, list: ListKind) -> Result<ListHead, StorageError> {
        read_head(&self.pool, list).await
    }

    async fn revisions(&self) -> Result<std::collections::BTreeMap<ListKind, i64>, StorageError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT list, revision FROM list_heads")
            .fetch_all(&self.pool)
            .await?;
        Ok(by_list(rows)?.into_iter().collect())
    }

    async fn snapshot(&self) -> Result<Snapshot, StorageError> {
        // One read transaction: in WAL mode it sees one consistent state of the file.
        let mut tx = self.pool.begin().await?;
        let mut lists = std::collections::BTreeMap::new();
        for list in ListKind::ALL {
            let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
                "SELECT entry_key, body, version FROM entries WHERE list = ?",
            )
            .bind(list.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let state = working_state_from_rows(list, rows)?;
            let head = read_head(&mut *tx, list).await?;
            let revision: i64 =
                sqlx::query_scalar("SELECT revision FROM list_heads WHERE list = ?")
                    .bind(list.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            let current = sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM versions WHERE list = ? ORDER BY volgnummer DESC LIMIT 1"
            ))
            .bind(list.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| version_from_row(&row))
            .transpose()?;
            lists.insert(
                list,
                ListSnapshot {
                    state,
                    head,
                    revision,
                    current,
                },
            );
        }
        let retired_gegevensdienst_ids = sqlx::query_scalar::<_, String>(
            "SELECT gegevensdienst_id FROM retired_gegevensdienst_ids",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        tx.commit().await?;
        Ok(Snapshot {
            lists,
            retired_gegevensdienst_ids,
        })
    }

    async fn store_version(&self, version: &NewVersion) -> Result<(), StorageError> {
        let record = &version.record;
        let list = record.list;
        let (_turn, mut tx) = self.begin_write().await?;
        let (last, revision): (i64, i64) =
            sqlx::query_as("SELECT last_volgnummer, revision FROM list_heads WHERE list = ?")
                .bind(list.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if last + 1 != record.volgnummer.get() || revision != version.based_on_revision {
            return Err(StorageError::Stale { list });
        }
        sqlx::query(
            "INSERT INTO version_bodies (sha256, size_bytes, compression, compressed) \
             VALUES (?, ?, 'gzip', ?) ON CONFLICT DO NOTHING",
        )
        .bind(&record.body_sha256)
        .bind(version.body_size)
        .bind(&version.body_gzip)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE versions SET superseded_at = ?1, grace_until = ?1 + grace_seconds * 1000000 \
             WHERE list = ?2 AND superseded_at IS NULL",
        )
        .bind(micros(record.tijdstempel.instant()))
        .bind(list.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO versions (list, volgnummer, tijdstempel, valid_from, expires_at, grace_seconds, \
             header, body_sha256, sha256, size_bytes, previous_sha256, signature, heartbeat, published_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(list.as_str())
        .bind(record.volgnummer.get())
        .bind(micros(record.tijdstempel.instant()))
        .bind(micros(record.valid_from))
        .bind(micros(record.expires_at))
        .bind(record.grace_seconds)
        .bind(&version.header)
        .bind(&record.body_sha256)
        .bind(&record.sha256)
        .bind(record.size_bytes)
        .bind(&record.previous_sha256)
        .bind(&version.signature)
        .bind(record.heartbeat)
        .bind(&version.published_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE list_heads SET last_volgnummer = ? WHERE list = ?")
            .bind(record.volgnummer.get())
            .bind(list.as_str())
            .execute(&mut *tx)
            .await?;
        // The revision check above proves every applied mutation is in this version.
        sqlx::query(
            "UPDATE mutations SET status = 'published', published_volgnummer = ?, published_at = ? \
             WHERE list = ? AND status = 'approved' AND applied_at IS NOT NULL",
        )
        .bind(record.volgnummer.get())
        .bind(micros(record.tijdstempel.instant()))
        .bind(list.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn current_version(&self, list: ListKind) -> Result<Option<VersionRecord>, StorageError> {
        sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE list = ? ORDER BY volgnummer DESC LIMIT 1"
        ))
        .bind(list.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| version_from_row(&row))
        .transpose()
    }

    async fn versions(&self, list: ListKind) -> Result<Vec<VersionRecord>, StorageError> {
        sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE list = ? ORDER BY volgnummer"
        ))
        .bind(list.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn version(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<Option<StoredVersion>, StorageError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            ", header, compressed, signature FROM versions JOIN version_bodies \
             ON version_bodies.sha256 = versions.body_sha256 WHERE list = ? AND volgnummer = ?"
        ))
        .bind(list.as_str())
        .bind(volgnummer.get())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredVersion {
                record: version_from_row(&row)?,
                header: row.get(13),
                body_gzip: row.get(14),
                signature: row.get(15),
            })
        })
        .transpose()
    }

    async fn versions_honoured_at(
        &self,
        list: ListKind,
        at: DateTime<Utc>,
    ) -> Result<Vec<VersionRecord>, StorageError> {
        sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE list = ?1 AND valid_from <= ?2 AND expires_at > ?2 \
             AND (grace_until IS NULL OR grace_until > ?2) ORDER BY volgnummer"
        ))
        .bind(list.as_str())
        .bind(micros(at))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn submit_mutation(
        &self,
        m: &NewMutation,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError> {
        let (list, key) = (m.change.list(), m.change.key());
        let (_turn, mut tx) = self.begin_write().await?;
        if let Some(id) = open_mutation(&mut tx, list, key).await? {
            return Err(StorageError::OpenMutation {
                list,
                key: key.to_owned(),
                id,
            });
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM entries WHERE list = ? AND entry_key = ?")
                .bind(list.as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        if current.unwrap_or(0) != m.change.base_version() {
            return Err(conflict(list, key, m.change.base_version(), current));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO mutations (list, entry_key, operation, body, base_version, on_behalf_of, reference, \
             urgent, agreed_deadline, effective_from, status, submitted_by, submitted_by_subject, submitted_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, ?, ?) RETURNING id",
        )
        .bind(list.as_str())
        .bind(key)
        .bind(m.change.operation().as_str())
        .bind(m.change.body())
        .bind(m.change.base_version())
        .bind(&m.on_behalf_of)
        .bind(&m.reference)
        .bind(m.urgent)
        .bind(m.agreed_deadline.map(micros))
        .bind(m.effective_from.map(micros))
        .bind(&m.submitted_by)
        .bind(&m.submitted_by_subject)
        .bind(micros(m.submitted_at))
        .fetch_one(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit.about(format!("mutations/{id}"))).await?;
        let (record, _) = read_mutation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn decide_mutation(
        &self,
        d: &MutationDecision,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let (record, body) = read_mutation(&mut tx, d.id).await?;
        d.check(&record)?;
        // Numbered parameters: ?1 by, ?2 by_subject, ?3 at, ?4 id, ?5 reason.
        let sql = match &d.decision {
            Decision::Approve => {
                "UPDATE mutations SET status = 'approved', decided_by = ?1, decided_by_subject = ?2, \
                 decided_at = ?3 WHERE id = ?4"
            }
            Decision::Reject { .. } => {
                "UPDATE mutations SET status = 'rejected', decided_by = ?1, decided_by_subject = ?2, \
                 decided_at = ?3, rejection_reason = ?5 WHERE id = ?4"
            }
            Decision::Withdraw => {
                "UPDATE mutations SET status = 'withdrawn', withdrawn_at = ?3 WHERE id = ?4"
            }
        };
        let reason = match &d.decision {
            Decision::Reject { reason } => Some(reason.as_str()),
            _ => None,
        };
        sqlx::query(sql)
            .bind(&d.by)
            .bind(&d.by_subject)
            .bind(micros(d.at))
            .bind(d.id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        if d.applies_now(&record) {
            apply_mutation(&mut tx, &record, body.as_deref(), d.at).await?;
        }
        insert_audit(&mut tx, audit).await?;
        let (record, _) = read_mutation(&mut tx, d.id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn apply_due_mutations(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM mutations WHERE status = 'approved' AND applied_at IS NULL \
             AND effective_from <= ? ORDER BY effective_from, id",
        )
        .bind(micros(at))
        .fetch_all(&self.pool)
        .await?;
        let mut done = Vec::new();
        for id in due {
            let (_turn, mut tx) = self.begin_write().await?;
            let (record, body) = read_mutation(&mut tx, id).await?;
            if record.applied_at.is_some() || record.status != MutationStatus::Approved {
                continue;
            }
            match apply_mutation(&mut tx, &record, body.as_deref(), at).await {
                Ok(()) => {}
                Err(e @ StorageError::Conflict { .. }) => {
                    sqlx::query("UPDATE mutations SET status = 'rejected', rejection_reason = ? WHERE id = ?")
                        .bind(format!("no longer fits when it became effective: {e}"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                Err(e) => return Err(e),
            }
            done.push(read_mutation(&mut tx, id).await?.0);
            tx.commit().await?;
        }
        Ok(done)
    }

    async fn unpublished_changes(&self) -> Result<Vec<(ListKind, DateTime<Utc>)>, StorageError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT list, MIN(applied_at) FROM mutations \
             WHERE status = 'approved' AND applied_at IS NOT NULL GROUP BY list ORDER BY list",
        )
        .fetch_all(&self.pool)
        .await?;
        by_list(rows.into_iter().map(|(l, at)| (l, instant(at))))
    }

    async fn mutations(&self, q: &MutationQuery) -> Result<Vec<MutationRecord>, StorageError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MUTATION_COLUMNS} FROM mutations WHERE (?1 IS NULL OR status = ?1) \
             AND (?2 IS NULL OR list = ?2) \
             AND (?3 IS NULL OR submitted_by = ?3 OR submitted_by_subject = ?3) \
             AND (?4 IS NULL OR submitted_at < ?4) AND (?5 IS NULL OR submitted_at >= ?5) \
             ORDER BY submitted_at DESC, id DESC LIMIT ?6"
        )))
        .bind(q.status.map(MutationStatus::as_str))
        .bind(q.list.map(ListKind::as_str))
        .bind(&q.submitter)
        .bind(q.submitted_before.map(micros))
        .bind(q.submitted_after.map(micros))
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mutation_from_row).collect()
    }

    async fn mutation(&self, id: i64) -> Result<Option<MutationRecord>, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| mutation_from_row(&r)).transpose()
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError> {
        let (_turn, mut tx) = self.begin_write().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT at, actor_subject, actor_fingerprint, role, action, object, on_behalf_of, \
             outcome, reason FROM audit_log WHERE (?1 IS NULL OR at >= ?1) \
             AND (?2 IS NULL OR at < ?2) \
             AND (?3 IS NULL OR actor_subject = ?3 OR actor_fingerprint = ?3) \
             AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4) \
             AND (?5 IS NULL OR object = ?5) AND (?6 IS NULL OR outcome = ?6) \
             ORDER BY at DESC, id DESC LIMIT ?7",
        )
        .bind(query.since.map(micros))
        .bind(query.until.map(micros))
        .bind(&query.actor)
        .bind(&query.action)
        .bind(&query.object)
        .bind(query.outcome.map(AuditOutcome::as_str))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: instant(row.get(0)),
                    actor_subject: row.get(1),
                    actor_fingerprint: row.get(2),
                    role: row.get(3),
                    action: row.get(4),
                    object: row.get(5),
                    on_behalf_of: row.get(6),
                    outcome: AuditOutcome::parse(row.get(7))?,
                    reason: row.get(8),
                })
            })
            .collect()
    }
}
