//! The storage boundary's errors, and which of them mean "the database cannot take the
//! request now" (503) rather than a fault in the request or the stored data.

use crate::domain::{CheckError, DecisionError, ListKind};

use super::{postgres, sqlite};

/// Errors at the storage boundary. "Stale" has one meaning throughout: work based on a
/// state that has since moved on (an entry's version, rule 8; a list's revision or
/// Volgnummer, for a publication). Nothing is stored; the caller starts again from now.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Optimistic concurrency: the entry changed since the version the caller based its change on.
    #[error(
        "{list} entry \"{key}\" is at version {current}, the change was based on version {expected}"
    )]
    StaleEntry {
        list: ListKind,
        key: String,
        expected: i64,
        current: i64,
    },
    /// Publication: the list changed (or another replica published) while this version was
    /// being prepared. Nothing was stored; prepare again from a new snapshot.
    #[error("the {list} list changed while its new version was prepared")]
    StaleList { list: ListKind },
    /// The decision does not fit the mutation as the deciding transaction found it.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// The approval's re-check refused the change against the working state as the deciding
    /// transaction found it.
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error("there is no mutation {0}")]
    UnknownMutation(i64),
    /// One open mutation per entry: the next one is based on what the open one leaves.
    #[error(
        "{list} entry \"{key}\" already has mutation {id} waiting; withdraw or decide it first"
    )]
    OpenMutation {
        list: ListKind,
        key: String,
        id: i64,
    },
    /// Stored data no longer passes the domain checks: never expected, always worth an alarm.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database the node opened is gone: its SQLite file was removed or replaced. Nothing
    /// is read from or written to what is left of it (issue 23).
    #[error("the database is gone: {0}")]
    Lost(String),
    /// This backend has no backup of its own (PostgreSQL: pg_basebackup and WAL archiving).
    #[error("{0}")]
    Unsupported(&'static str),
    /// A restore's input failed while it was written (the transaction rolled back).
    #[error("restore: {0}")]
    RestoreSource(String),
    #[error("the database URL is not usable: {0}")]
    InvalidUrl(String),
    #[error(transparent)]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StorageError {
    /// The database cannot take the request now — its disk is full, an I/O error, it is
    /// read-only, busy or unreachable — as opposed to a fault in the request or in the
    /// stored data: the request may succeed when tried again later.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StorageError::Database(e) => e,
            StorageError::Lost(_) => return true,
            _ => return false,
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => true,
            sqlx::Error::Database(e) => {
                sqlite::is_unavailable(e.as_ref()) || postgres::is_unavailable(e.as_ref())
            }
            _ => false,
        }
    }
}
