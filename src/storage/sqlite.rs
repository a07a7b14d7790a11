//! SQLite: one file, WAL, `synchronous = FULL` so that a committed transaction survives a
//! power cut. Write transactions start with `BEGIN IMMEDIATE`, one at a time, queued in this
//! process rather than in SQLite's busy handler. Instants are microseconds since the epoch.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::StorageError;
use super::connection::OwnedTransaction;
use super::sql::{Arg, Backend, Query, Row, Transaction, decoded_columns};

mod backup;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) struct SqliteBackend {
    pool: SqlitePool,
    /// The file opened, as the file system identified it then: SQLite goes on reading and
    /// writing a file that was deleted (its open descriptors keep it), so every transaction
    /// first checks that the path still names that file — a write must not "succeed" into a
    /// database nobody will ever open again (issue 23).
    file: Option<OpenedFile>,
    /// One writer at a time, queued here rather than in SQLite's busy handler, which polls
    /// with sleeps of up to 100 ms: under concurrent submissions that sleep was the p99.
    writer: Arc<Mutex<()>>,
}

impl SqliteBackend {
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StorageError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let file = match path.as_os_str() == ":memory:" {
            true => None,
            false => Some(OpenedFile::of(path)?),
        };
        Ok(Self {
            pool,
            file,
            writer: Arc::new(Mutex::new(())),
        })
    }

    fn still_there(&self) -> Result<(), StorageError> {
        self.file.as_ref().map_or(Ok(()), OpenedFile::still_there)
    }
}

struct OpenedFile {
    path: std::path::PathBuf,
    /// Device and inode.
    identity: (u64, u64),
}

impl OpenedFile {
    fn identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path)?;
        Ok((metadata.dev(), metadata.ino()))
    }

    fn of(path: std::path::PathBuf) -> Result<Self, StorageError> {
        let identity = Self::identity(&path).map_err(sqlx::Error::Io)?;
        Ok(Self { path, identity })
    }

    fn still_there(&self) -> Result<(), StorageError> {
        match Self::identity(&self.path) {
            Ok(identity) if identity == self.identity => Ok(()),
            Ok(_) => Err(StorageError::Lost(format!(
                "{} was replaced by another file",
                self.path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::Lost(format!(
                "{} was removed",
                self.path.display()
            ))),
            Err(e) => Err(StorageError::Lost(format!(
                "{} cannot be examined: {}",
                self.path.display(),
                e.kind()
            ))),
        }
    }
}

/// The SQL with `$1, $2, … $N` written as anonymous `?` when they appear exactly in that
/// order, once each (the multi-row INSERTs). sqlx asks SQLite for every parameter's name, and
/// SQLite finds a name by walking its list of names: quadratic in a statement's parameters,
/// a fifth of a 10 000-entry import (issue 12's profile). Anonymous parameters have no names.
fn anonymous_parameters(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1u32;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let (before, after) = rest.split_at(at);
        let digits = after[1..].bytes().take_while(u8::is_ascii_digit).count();
        let number: u32 = after.get(1..1 + digits)?.parse().ok()?;
        if number != expected {
            return None;
        }
        out.push_str(before);
        out.push('?');
        expected += 1;
        rest = &after[1 + digits..];
    }
    out.push_str(rest);
    // Only worth it, and only checked, for statements with many parameters.
    (expected > 64).then_some(out)
}

fn statement(query: Query<'_>) -> sqlx::query::Query<'static, Sqlite, SqliteArguments> {
    let sql = match anonymous_parameters(&query.sql) {
        Some(rewritten) => rewritten.into(),
        None => query.sql,
    };
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
    for arg in query.args {
        statement = match arg {
            Arg::Int(v) => statement.bind(v),
            Arg::Float(v) => statement.bind(v),
            Arg::Text(v) | Arg::Json(v) => statement.bind(v.map(str::to_owned)),
            Arg::Bool(v) => statement.bind(v),
            Arg::Instant(v) => statement.bind(v.map(|at| at.timestamp_micros())),
            Arg::Bytes(v) => statement.bind(v.to_vec()),
        };
    }
    statement
}

/// SQLite cannot take the request now: BUSY, LOCKED, READONLY, IOERR, FULL or CANTOPEN (the
/// primary result code of an extended one).
pub(super) fn is_unavailable(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .and_then(|e| sqlx::error::DatabaseError::code(e)?.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
}

pub(super) struct SqliteTransaction {
    tx: OwnedTransaction<Sqlite>,
    /// This process's writer turn, held until the transaction ends (write transactions only).
    _turn: Option<OwnedMutexGuard<()>>,
}

#[async_trait]
impl Transaction for SqliteTransaction {
    type Row = SqliteRow;

    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StorageError> {
        Ok(statement(query)
            .execute(self.tx.connection())
            .await?
            .rows_affected())
    }

    async fn fetch(&mut self, query: Query<'_>) -> Result<Vec<SqliteRow>, StorageError> {
        Ok(statement(query).fetch_all(self.tx.connection()).await?)
    }

    async fn commit(self) -> Result<(), StorageError> {
        self.tx.commit().await
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    type Row = SqliteRow;
    type Transaction = SqliteTransaction;

    async fn migrate(&self) -> Result<(), StorageError> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    async fn begin_read(&self) -> Result<SqliteTransaction, StorageError> {
        self.still_there()?;
        // A read transaction in WAL mode sees one consistent state of the file.
        Ok(SqliteTransaction {
            tx: OwnedTransaction::begin(&self.pool, "BEGIN").await?,
            _turn: None,
        })
    }

    async fn begin_write(&self) -> Result<SqliteTransaction, StorageError> {
        let turn = self.writer.clone().lock_owned().await;
        self.still_there()?;
        Ok(SqliteTransaction {
            tx: OwnedTransaction::begin(&self.pool, "BEGIN IMMEDIATE").await?,
            _turn: Some(turn),
        })
    }

    fn now_micros(&self) -> &'static str {
        "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
    }

    async fn backup(&self, out: &std::path::Path) -> Result<u64, StorageError> {
        self.still_there()?;
        backup::vacuum_into(&self.pool, out).await
    }

    async fn fetch(&self, query: Query<'_>) -> Result<Vec<SqliteRow>, StorageError> {
        self.still_there()?;
        Ok(statement(query).fetch_all(&self.pool).await?)
    }
}

impl Row for SqliteRow {
    decoded_columns!();

    fn instant(&self, column: usize) -> Result<Option<DateTime<Utc>>, StorageError> {
        let micros: Option<i64> = self.try_get(column)?;
        micros
            .map(|m| {
                DateTime::from_timestamp_micros(m)
                    .ok_or_else(|| StorageError::Corrupt(format!("instant {m} is out of range")))
            })
            .transpose()
    }
    fn json(&self, column: usize) -> Result<Option<String>, StorageError> {
        self.text(column)
    }
}

#[cfg(test)]
mod tests {
    use super::anonymous_parameters;

    #[test]
    fn only_long_sequential_numbered_parameters_become_anonymous() {
        let rows: Vec<String> = (0..30)
            .map(|r| format!("(${}, ${}, ${})", 3 * r + 1, 3 * r + 2, 3 * r + 3))
            .collect();
        let insert = format!("INSERT INTO t (a, b, c) VALUES {}", rows.join(", "));
        let rewritten = anonymous_parameters(&insert).unwrap();
        assert!(rewritten.starts_with("INSERT INTO t (a, b, c) VALUES (?, ?, ?), (?, ?, ?)"));
        assert!(!rewritten.contains('$'));
        assert_eq!(
            anonymous_parameters("SELECT $1, $2"),
            None,
            "short: left alone"
        );
        let reused = insert.replacen("$2", "$1", 1);
        assert_eq!(
            anonymous_parameters(&reused),
            None,
            "a reused number keeps its name"
        );
    }
}
