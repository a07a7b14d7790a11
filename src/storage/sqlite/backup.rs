//! `stelselnode backup` for SQLite (issue 23): a consistent copy of the database while the
//! node serves and writes. `VACUUM INTO` reads the database in one read transaction (WAL:
//! writers go on meanwhile) and writes a compact copy into a new file beside the target; the
//! copy is opened on its own and must pass `PRAGMA integrity_check` and hold the node's
//! migrations; then it is flushed to disk and renamed onto the target, so the target is
//! always either the previous backup or a complete new one.

use std::path::{Path, PathBuf};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{ConnectOptions, Connection};

use super::StorageError;

/// The copy being written, removed unless it became the backup.
struct Partial {
    path: PathBuf,
    done: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Database(sqlx::Error::Io(e))
}

fn partial_beside(out: &Path) -> Result<Partial, StorageError> {
    let name = out
        .file_name()
        .ok_or_else(|| StorageError::Unsupported("the backup target names no file"))?
        .to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let unique = format!(".{name}.{}-{nanos}.partial", std::process::id());
    Ok(Partial {
        path: out.with_file_name(unique),
        done: false,
    })
}

pub(super) async fn vacuum_into(pool: &SqlitePool, out: &Path) -> Result<u64, StorageError> {
    let mut partial = partial_beside(out)?;
    let target = partial.path.to_str().ok_or(StorageError::Unsupported(
        "the backup target's path is not UTF-8",
    ))?;
    sqlx::query("VACUUM INTO $1")
        .bind(target.to_owned())
        .execute(pool)
        .await?;

    let mut copy = SqliteConnectOptions::new()
        .filename(&partial.path)
        .read_only(true)
        .connect()
        .await?;
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut copy)
        .await?;
    if integrity != ["ok"] {
        return Err(StorageError::Corrupt(format!(
            "the backup copy failed its integrity check: {}",
            integrity.first().map_or("no answer", String::as_str)
        )));
    }
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut copy)
        .await?;
    if migrations == 0 {
        return Err(StorageError::Corrupt(
            "the backup copy holds no migrations".into(),
        ));
    }
    copy.close().await?;

    let file = std::fs::File::open(&partial.path).map_err(io)?;
    file.sync_all().map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    std::fs::rename(&partial.path, out).map_err(io)?;
    partial.done = true;
    // The rename itself reaches the disk with its directory.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(size)
}
