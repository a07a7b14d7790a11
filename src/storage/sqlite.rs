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
    AuditOutcome, AuditQuery, AuditRecord, EntryChange, ImportOutcome, ListHead, StorageError,
    WorkingState, conflict, removed_by_import, volgnummer_from_db, working_state_from_rows,
};
use crate::domain::{Lijst, ListKind};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStorage {
    pool: SqlitePool,
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
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StorageError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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
        let mut tx = self.begin_write().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM entries WHERE list = ? AND entry_key = ?")
                .bind(change.list().as_str())
                .bind(change.key())
                .fetch_optional(&mut *tx)
                .await?;
        if current.unwrap_or(0) != change.base_version() {
            return Err(conflict(change, current));
        }
        let new_version = change.base_version() + 1;
        sqlx::query(
            "INSERT INTO entries (list, entry_key, version, body, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (list, entry_key) DO UPDATE SET version = excluded.version, \
             body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(change.list().as_str())
        .bind(change.key())
        .bind(new_version)
        .bind(change.body())
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new_version)
    }

    async fn import_list(
        &self,
        list: &Lijst,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<ImportOutcome, StorageError> {
        let kind = list.kind();
        let rows = list.entries.to_json_rows();
        let mut tx = self.begin_write().await?;
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

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError> {
        let mut tx = self.begin_write().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT at, actor_subject, actor_fingerprint, role, action, object, on_behalf_of, \
             outcome, reason FROM audit_log WHERE (?1 IS NULL OR at >= ?1) \
             AND (?2 IS NULL OR at < ?2) ORDER BY at DESC, id DESC LIMIT ?3",
        )
        .bind(query.since.map(micros))
        .bind(query.until.map(micros))
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
