//! The transaction logic of both backends, written once: every business sequence ("one open
//! mutation per entry", "reject a due mutation that no longer fits", "mark the approved
//! mutations published") and every SQL text lives here. A backend (`sqlite.rs`,
//! `postgres.rs`) supplies only what differs: how a transaction begins (SQLite's
//! `BEGIN IMMEDIATE` behind an in-process writer queue; PostgreSQL's row locks, asked for
//! with `Query::for_update`), how instants and JSON are encoded, and its migrations.
//!
//! The SQL is the common dialect of SQLite ≥ 3.39 and PostgreSQL: numbered `$n` parameters
//! (both accept them), `RETURNING`, `ON CONFLICT`, `IS DISTINCT FROM`, no casts and no
//! arrays; arithmetic on instants is done here in Rust, so each backend can store them its
//! own way (microseconds in SQLite, `timestamptz` in PostgreSQL).
//!
//! This file is the query framework (parameters, rows, transactions, what a backend
//! supplies); each concern implements its role trait of `crate::storage` in its own file:
//! `entries.rs` (the working state), `versions.rs`, `mutations.rs`, `audit.rs`, `sla.rs`,
//! `retention.rs`, `recovery.rs`, `secrets.rs`, `leases.rs`, with the row mappers they share in `rows.rs`.

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

mod audit;
mod entries;
mod leases;
mod log;
mod mutations;
mod recovery;
mod retention;
mod rows;
mod secrets;
mod sla;
mod versions;

use super::{Storage, StorageError};

/// A value bound to a `$n` parameter; the backend encodes it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<&'a str>),
    Bool(bool),
    Instant(Option<DateTime<Utc>>),
    Bytes(&'a [u8]),
    /// A JSON document given as text (`jsonb` in PostgreSQL).
    Json(Option<&'a str>),
}

/// One statement with its parameters.
#[derive(Debug)]
pub(super) struct Query<'a> {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg<'a>>,
    /// Lock the rows read until the transaction ends, where the backend has row locks
    /// (SQLite's write transaction already holds the whole database).
    pub for_update: bool,
}

pub(super) fn query<'a>(sql: impl Into<Cow<'static, str>>) -> Query<'a> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
        for_update: false,
    }
}

impl<'a> Query<'a> {
    fn arg(mut self, arg: Arg<'a>) -> Self {
        self.args.push(arg);
        self
    }
    fn int(self, value: impl Into<Option<i64>>) -> Self {
        self.arg(Arg::Int(value.into()))
    }
    fn float(self, value: impl Into<Option<f64>>) -> Self {
        self.arg(Arg::Float(value.into()))
    }
    fn text(self, value: impl Into<Option<&'a str>>) -> Self {
        self.arg(Arg::Text(value.into()))
    }
    fn boolean(self, value: bool) -> Self {
        self.arg(Arg::Bool(value))
    }
    fn instant(self, value: impl Into<Option<DateTime<Utc>>>) -> Self {
        self.arg(Arg::Instant(value.into()))
    }
    fn bytes(self, value: &'a [u8]) -> Self {
        self.arg(Arg::Bytes(value))
    }
    fn json(self, value: Option<&'a str>) -> Self {
        self.arg(Arg::Json(value))
    }
    fn for_update(mut self) -> Self {
        self.for_update = true;
        self
    }
}

/// A result row, read by column position.
pub(super) trait Row: Send + Sync {
    fn int(&self, column: usize) -> Result<Option<i64>, StorageError>;
    fn float(&self, column: usize) -> Result<Option<f64>, StorageError>;
    fn text(&self, column: usize) -> Result<Option<String>, StorageError>;
    fn boolean(&self, column: usize) -> Result<bool, StorageError>;
    fn instant(&self, column: usize) -> Result<Option<DateTime<Utc>>, StorageError>;
    fn bytes(&self, column: usize) -> Result<Vec<u8>, StorageError>;
    fn json(&self, column: usize) -> Result<Option<String>, StorageError>;
}

/// The `Row` methods both backends implement with sqlx's own decoding; each backend adds
/// `instant` and `json`, which it stores its own way.
macro_rules! decoded_columns {
    () => {
        fn int(&self, column: usize) -> Result<Option<i64>, StorageError> {
            Ok(sqlx::Row::try_get(self, column)?)
        }
        fn float(&self, column: usize) -> Result<Option<f64>, StorageError> {
            Ok(sqlx::Row::try_get(self, column)?)
        }
        fn text(&self, column: usize) -> Result<Option<String>, StorageError> {
            Ok(sqlx::Row::try_get(self, column)?)
        }
        fn boolean(&self, column: usize) -> Result<bool, StorageError> {
            Ok(sqlx::Row::try_get(self, column)?)
        }
        fn bytes(&self, column: usize) -> Result<Vec<u8>, StorageError> {
            Ok(sqlx::Row::try_get(self, column)?)
        }
    };
}
pub(super) use decoded_columns;

/// Reads of columns that may not be NULL.
trait RequiredColumns: Row {
    fn required<T>(&self, column: usize, value: Option<T>) -> Result<T, StorageError> {
        value.ok_or_else(|| StorageError::Corrupt(format!("column {column} is NULL")))
    }
    fn required_int(&self, column: usize) -> Result<i64, StorageError> {
        self.required(column, self.int(column)?)
    }
    fn required_text(&self, column: usize) -> Result<String, StorageError> {
        self.required(column, self.text(column)?)
    }
    fn required_instant(&self, column: usize) -> Result<DateTime<Utc>, StorageError> {
        self.required(column, self.instant(column)?)
    }
}

impl<R: Row + ?Sized> RequiredColumns for R {}

/// An open transaction. Dropped without `commit`, it rolls back.
#[async_trait]
pub(super) trait Transaction: Send {
    type Row: Row;
    /// Runs a statement; returns the number of rows it changed.
    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StorageError>;
    async fn fetch(&mut self, query: Query<'_>) -> Result<Vec<Self::Row>, StorageError>;
    async fn commit(self) -> Result<(), StorageError>;

    async fn fetch_optional(
        &mut self,
        query: Query<'_>,
    ) -> Result<Option<Self::Row>, StorageError> {
        Ok(self.fetch(query).await?.into_iter().next())
    }

    async fn fetch_one(&mut self, query: Query<'_>) -> Result<Self::Row, StorageError> {
        self.fetch_optional(query)
            .await?
            .ok_or_else(|| StorageError::Corrupt("an expected row is missing".into()))
    }
}

/// What a database backend supplies.
#[async_trait]
pub(super) trait Backend: Send + Sync + 'static {
    type Row: Row;
    type Transaction: Transaction<Row = Self::Row>;

    async fn migrate(&self) -> Result<(), StorageError>;
    /// A read-only transaction that sees one consistent state of the whole database.
    async fn begin_read(&self) -> Result<Self::Transaction, StorageError>;
    /// A write transaction, serialised with other writers as the backend does it.
    async fn begin_write(&self) -> Result<Self::Transaction, StorageError>;
    /// One statement on its own.
    async fn fetch(&self, query: Query<'_>) -> Result<Vec<Self::Row>, StorageError>;
    /// Statements that make the next generated ids follow rows inserted with their own ids
    /// (a restore): PostgreSQL's sequences do not see them; SQLite's AUTOINCREMENT does.
    fn after_explicit_ids(&self) -> &'static [&'static str] {
        &[]
    }
    /// The database's clock in microseconds since 1970, as an SQL expression.
    fn now_micros(&self) -> &'static str;
    /// See `Storage::backup`.
    async fn backup(&self, out: &std::path::Path) -> Result<u64, StorageError>;
}

/// The node's storage over one backend.
pub(super) struct SqlStorage<B>(pub B);

/// Rows per multi-row statement: far below both databases' parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

/// `($k, $k+1, …)` groups for `rows` rows of `width` parameters, numbered after `first - 1`.
fn placeholders(rows: usize, width: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let row = (0..width)
                .map(|c| format!("${}", first + r * width + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

#[async_trait]
impl<B: Backend> Storage for SqlStorage<B> {
    async fn migrate(&self) -> Result<(), StorageError> {
        self.0.migrate().await?;
        let leaves = log::catch_up(self).await?;
        if leaves > 0 {
            tracing::info!(
                leaves,
                "the transparency log now holds the versions published before it"
            );
        }
        Ok(())
    }

    async fn backup(&self, out: &std::path::Path) -> Result<u64, StorageError> {
        self.0.backup(out).await
    }
}
