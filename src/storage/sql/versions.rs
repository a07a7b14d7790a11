//! Published versions: stored once with their shared bodies, each the newest of its list,
//! and read back as published.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::entries::lock_working_state;
use super::rows::{VERSION_COLUMNS, current_version_query, list_of, version_from_row};
use super::{Backend, RequiredColumns, Row, SqlStorage, Transaction, query};
use crate::domain::{ListKind, VersionRecord, Volgnummer};
use crate::storage::{NewVersion, RestoreRecord, StorageError, StoredVersion, VersionStore};

pub(super) const RESTORE_COLUMNS: &str =
    "list, at, after_volgnummer, after_sha256, next_volgnummer, recovered_up_to";

fn restore_record(row: &impl Row) -> Result<RestoreRecord, StorageError> {
    Ok(RestoreRecord {
        list: list_of(row, 0)?,
        at: row.required_instant(1)?,
        after_volgnummer: row.required_int(2)?,
        after_sha256: row.text(3)?,
        next_volgnummer: row.required_int(4)?,
        recovered_up_to: row.required_instant(5)?,
    })
}

pub(super) async fn read_restores<T: Transaction>(
    tx: &mut T,
) -> Result<Vec<RestoreRecord>, StorageError> {
    tx.fetch(query(format!(
        "SELECT {RESTORE_COLUMNS} FROM restores ORDER BY at, list, next_volgnummer"
    )))
    .await?
    .iter()
    .map(restore_record)
    .collect()
}

/// Marks the list's current version superseded at `at`, its grace running from then.
pub(super) async fn supersede_current<T: Transaction>(
    tx: &mut T,
    list: ListKind,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    let current = tx
        .fetch(
            query(
                "SELECT volgnummer, grace_seconds FROM versions \
                 WHERE list = $1 AND superseded_at IS NULL",
            )
            .text(list.as_str()),
        )
        .await?;
    for row in current {
        let grace_until = at + Duration::seconds(row.required_int(1)?);
        tx.execute(
            query(
                "UPDATE versions SET superseded_at = $1, grace_until = $2 \
                 WHERE list = $3 AND volgnummer = $4",
            )
            .instant(at)
            .instant(grace_until)
            .text(list.as_str())
            .int(row.required_int(0)?),
        )
        .await?;
    }
    Ok(())
}

/// Stores one version as its list's newest (see `Storage::store_versions`).
pub(super) async fn store_version<T: Transaction>(
    tx: &mut T,
    version: &NewVersion,
) -> Result<(), StorageError> {
    let record = &version.record;
    let list = record.list;
    let at = record.tijdstempel.instant();
    let head = tx
        .fetch_one(
            query("SELECT last_volgnummer, revision FROM list_heads WHERE list = $1")
                .text(list.as_str()),
        )
        .await?;
    if head.required_int(0)? + 1 != record.volgnummer.get()
        || head.required_int(1)? != version.based_on_revision
    {
        return Err(StorageError::StaleList { list });
    }
    tx.execute(
        query(
            "INSERT INTO version_bodies (sha256, size_bytes, compression, compressed) \
             VALUES ($1, $2, 'gzip', $3) ON CONFLICT DO NOTHING",
        )
        .text(record.body_sha256.as_str())
        .int(version.body_size)
        .bytes(&version.body_gzip),
    )
    .await?;
    supersede_current(tx, list, at).await?;
    tx.execute(
        query(
            "INSERT INTO versions (list, volgnummer, tijdstempel, valid_from, expires_at, \
             grace_seconds, header, body_sha256, sha256, size_bytes, previous_sha256, \
             signature, heartbeat, published_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .text(list.as_str())
        .int(record.volgnummer.get())
        .instant(at)
        .instant(record.valid_from)
        .instant(record.expires_at)
        .int(record.grace_seconds)
        .bytes(&version.header)
        .text(record.body_sha256.as_str())
        .text(record.sha256.as_str())
        .int(record.size_bytes)
        .text(record.previous_sha256.as_deref())
        .bytes(&version.signature)
        .boolean(record.heartbeat)
        .text(version.published_by.as_str()),
    )
    .await?;
    super::log::append_leaf(tx, record).await?;
    tx.execute(
        query(
            "UPDATE list_heads SET last_volgnummer = $1, published_revision = $2 WHERE list = $3",
        )
        .int(record.volgnummer.get())
        .int(version.based_on_revision)
        .text(list.as_str()),
    )
    .await?;
    // The revision check above proves every applied mutation is in this version.
    tx.execute(
        query(
            "UPDATE mutations SET status = 'published', published_volgnummer = $1, \
             published_at = $2 WHERE list = $3 AND status = 'approved' \
             AND applied_at IS NOT NULL",
        )
        .int(record.volgnummer.get())
        .instant(at)
        .text(list.as_str()),
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> VersionStore for SqlStorage<B> {
    async fn store_versions(&self, versions: &[NewVersion]) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        lock_working_state(&mut tx).await?;
        for version in versions {
            store_version(&mut tx, version).await?;
        }
        tx.commit().await
    }

    async fn current_version(&self, list: ListKind) -> Result<Option<VersionRecord>, StorageError> {
        self.0
            .fetch(current_version_query(list))
            .await?
            .first()
            .map(version_from_row)
            .transpose()
    }

    async fn versions(&self, list: ListKind) -> Result<Vec<VersionRecord>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {VERSION_COLUMNS} FROM versions WHERE list = $1 ORDER BY volgnummer"
                ))
                .text(list.as_str()),
            )
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
        self.0
            .fetch(
                query(format!(
                    "SELECT {VERSION_COLUMNS}, header, compressed, signature FROM versions \
                     JOIN version_bodies ON version_bodies.sha256 = versions.body_sha256 \
                     WHERE list = $1 AND volgnummer = $2"
                ))
                .text(list.as_str())
                .int(volgnummer.get()),
            )
            .await?
            .first()
            .map(|row| {
                Ok(StoredVersion {
                    record: version_from_row(row)?,
                    header: row.bytes(14)?,
                    body_gzip: row.bytes(15)?,
                    signature: row.bytes(16)?,
                })
            })
            .transpose()
    }

    async fn versions_honoured_at(
        &self,
        list: ListKind,
        at: DateTime<Utc>,
    ) -> Result<Vec<VersionRecord>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {VERSION_COLUMNS} FROM versions WHERE list = $1 AND valid_from <= $2 \
                     AND expires_at > $2 AND (grace_until IS NULL OR grace_until > $2) \
                     ORDER BY volgnummer"
                ))
                .text(list.as_str())
                .instant(at),
            )
            .await?
            .iter()
            .map(version_from_row)
            .collect()
    }

    async fn restores(&self) -> Result<Vec<RestoreRecord>, StorageError> {
        let mut tx = self.0.begin_read().await?;
        let records = read_restores(&mut tx).await?;
        tx.commit().await?;
        Ok(records)
    }
}
