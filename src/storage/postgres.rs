//! PostgreSQL: the backend for several stateless replicas. Writers that touch a list's
//! numbering lock its `list_heads` row, so replicas are serialised in the database; entry
//! changes lock the entry row.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::{
    AuditOutcome, AuditQuery, AuditRecord, EntryChange, ImportOutcome, ListHead, StorageError,
    WorkingState, conflict, removed_by_import, volgnummer_from_db, working_state_from_rows,
};
use crate::domain::{Lijst, ListKind};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

async fn insert_audit(
    tx: &mut Transaction<'static, Postgres>,
    record: &AuditRecord,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_subject, actor_fingerprint, role, action, object, \
         on_behalf_of, outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.at)
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
    executor: impl sqlx::PgExecutor<'_>,
    list: ListKind,
) -> Result<ListHead, StorageError> {
    let row = sqlx::query(
        "SELECT last_volgnummer, imported_volgnummer, imported_at FROM list_heads WHERE list = $1",
    )
    .bind(list.as_str())
    .fetch_one(executor)
    .await?;
    Ok(ListHead {
        list,
        last_volgnummer: volgnummer_from_db(list, row.get(0))?,
        imported_volgnummer: volgnummer_from_db(list, row.get::<Option<i64>, _>(1).unwrap_or(0))?,
        imported_at: row.get(2),
    })
}

#[async_trait]
impl super::Storage for PostgresStorage {
    async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn working_state(&self, list: ListKind) -> Result<WorkingState, StorageError> {
        let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
            "SELECT entry_key, body::text, version FROM entries WHERE list = $1",
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
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM entries WHERE list = $1 AND entry_key = $2 FOR UPDATE",
        )
        .bind(change.list().as_str())
        .bind(change.key())
        .fetch_optional(&mut *tx)
        .await?;
        if current.unwrap_or(0) != change.base_version() {
            return Err(conflict(change, current));
        }
        let new_version = change.base_version() + 1;
        // A concurrent first insert of the same key makes this affect no row: a conflict too.
        let written = sqlx::query(
            "INSERT INTO entries (list, entry_key, version, body, updated_at) \
             VALUES ($1, $2, $3, $4::jsonb, $5) \
             ON CONFLICT (list, entry_key) DO UPDATE SET version = EXCLUDED.version, \
             body = EXCLUDED.body, updated_at = EXCLUDED.updated_at \
             WHERE entries.version = $6",
        )
        .bind(change.list().as_str())
        .bind(change.key())
        .bind(new_version)
        .bind(change.body())
        .bind(at)
        .bind(change.base_version())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if written == 0 {
            return Err(conflict(change, Some(new_version)));
        }
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT 1 FROM list_heads WHERE list = $1 FOR UPDATE")
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await?;
        let live: Vec<String> = sqlx::query_scalar(
            "SELECT entry_key FROM entries WHERE list = $1 AND body IS NOT NULL",
        )
        .bind(kind.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let removed = removed_by_import(live, &rows);
        sqlx::query(
            "UPDATE entries SET body = NULL, version = version + 1, updated_at = $1 \
             WHERE list = $2 AND entry_key = ANY($3)",
        )
        .bind(at)
        .bind(kind.as_str())
        .bind(&removed)
        .execute(&mut *tx)
        .await?;
        let (keys, bodies): (Vec<String>, Vec<String>) = rows.iter().cloned().unzip();
        let changed = sqlx::query(
            "INSERT INTO entries (list, entry_key, version, body, updated_at) \
             SELECT $1, k, 1, b::jsonb, $4 FROM UNNEST($2::text[], $3::text[]) AS t (k, b) \
             ON CONFLICT (list, entry_key) DO UPDATE SET version = entries.version + 1, \
             body = EXCLUDED.body, updated_at = EXCLUDED.updated_at \
             WHERE entries.body IS DISTINCT FROM EXCLUDED.body",
        )
        .bind(kind.as_str())
        .bind(&keys)
        .bind(&bodies)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
        sqlx::query(
            "UPDATE list_heads SET last_volgnummer = GREATEST(last_volgnummer, $1), \
             imported_volgnummer = $1, imported_at = $2 WHERE list = $3",
        )
        .bind(list.volgnummer.get())
        .bind(at)
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
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT at, actor_subject, actor_fingerprint, role, action, object, on_behalf_of, \
             outcome, reason FROM audit_log WHERE ($1 IS NULL OR at >= $1) \
             AND ($2 IS NULL OR at < $2) ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(query.since)
        .bind(query.until)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: row.get(0),
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
