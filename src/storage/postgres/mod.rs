//! PostgreSQL: the backend for several stateless replicas. Writers that touch a list's
//! numbering lock its `list_heads` row and entry changes lock the entry row
//! (`Query::for_update`), so replicas are serialised in the database. Snapshots read in one
//! repeatable-read transaction. The URL may name several hosts; `primary.rs` follows a
//! failover between them.

mod primary;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row as _};

use super::StorageError;
use super::connection::OwnedTransaction;
use super::sql::{Arg, Backend, Query, Row, Transaction, decoded_columns};
use primary::Primary;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) struct PostgresBackend {
    primary: Arc<Primary>,
}

impl PostgresBackend {
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10));
        Ok(Self {
            primary: Primary::connect(url, pool).await?,
        })
    }

    fn pool(&self) -> &PgPool {
        self.primary.pool()
    }
}

fn statement(
    query: Query<'_>,
) -> Result<sqlx::query::Query<'static, Postgres, PgArguments>, StorageError> {
    let sql = match query.for_update {
        true => format!("{} FOR UPDATE", query.sql).into(),
        false => query.sql,
    };
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
    for arg in query.args {
        statement = match arg {
            Arg::Int(v) => statement.bind(v),
            Arg::Float(v) => statement.bind(v),
            Arg::Text(v) => statement.bind(v.map(str::to_owned)),
            Arg::Bool(v) => statement.bind(v),
            Arg::Instant(v) => statement.bind(v),
            Arg::Bytes(v) => statement.bind(v.to_vec()),
            Arg::Json(v) => statement.bind(
                v.map(|text| RawValue::from_string(text.to_owned()).map(Json))
                    .transpose()
                    .map_err(|e| StorageError::Corrupt(format!("JSON to store: {e}")))?,
            ),
        };
    }
    Ok(statement)
}

/// PostgreSQL cannot take the request now: SQLSTATE classes 53 (insufficient resources: disk
/// full, out of memory), 08 (connection exceptions), 57 (operator intervention: shutdown,
/// recovery), a read-only transaction (25006), or a database that no longer exists (3D000:
/// dropped, or a new cluster without it).
pub(super) fn is_unavailable(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .map(|e| e.code())
        .is_some_and(|code| {
            ["53", "08", "57"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "25006"
                || code == "3D000"
        })
}

pub(super) struct PostgresTransaction(OwnedTransaction<Postgres>);

#[async_trait]
impl Transaction for PostgresTransaction {
    type Row = PgRow;

    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StorageError> {
        Ok(statement(query)?
            .execute(self.0.connection())
            .await?
            .rows_affected())
    }

    async fn fetch(&mut self, query: Query<'_>) -> Result<Vec<PgRow>, StorageError> {
        Ok(statement(query)?.fetch_all(self.0.connection()).await?)
    }

    async fn commit(self) -> Result<(), StorageError> {
        self.0.commit().await
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    type Row = PgRow;
    type Transaction = PostgresTransaction;

    async fn migrate(&self) -> Result<(), StorageError> {
        Ok(MIGRATOR.run(self.pool()).await?)
    }

    async fn begin_read(&self) -> Result<PostgresTransaction, StorageError> {
        let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
        Ok(PostgresTransaction(
            OwnedTransaction::begin(self.pool(), begin).await?,
        ))
    }

    async fn begin_write(&self) -> Result<PostgresTransaction, StorageError> {
        Ok(PostgresTransaction(
            OwnedTransaction::begin(self.pool(), "BEGIN").await?,
        ))
    }

    async fn backup(&self, _out: &std::path::Path) -> Result<u64, StorageError> {
        Err(StorageError::Unsupported(
            "a PostgreSQL database is backed up with pg_basebackup and WAL archiving \
             (README, \"Disaster recovery\")",
        ))
    }

    fn now_micros(&self) -> &'static str {
        // The wall clock now, not the transaction's start.
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT"
    }

    fn after_explicit_ids(&self) -> &'static [&'static str] {
        &[
            "SELECT setval(pg_get_serial_sequence('mutations', 'id'), \
             COALESCE((SELECT MAX(id) FROM mutations), 0) + 1, false)",
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), \
             COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1, false)",
        ]
    }

    async fn fetch(&self, query: Query<'_>) -> Result<Vec<PgRow>, StorageError> {
        Ok(statement(query)?.fetch_all(self.pool()).await?)
    }
}

impl Row for PgRow {
    decoded_columns!();

    fn instant(&self, column: usize) -> Result<Option<DateTime<Utc>>, StorageError> {
        Ok(self.try_get(column)?)
    }
    fn json(&self, column: usize) -> Result<Option<String>, StorageError> {
        let json: Option<Json<Box<RawValue>>> = self.try_get(column)?;
        Ok(json.map(|j| j.0.get().to_owned()))
    }
}
