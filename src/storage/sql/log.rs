//! The transparency log's leaves (issue 26): appended in the transaction that stores their
//! version, under the working-state lock every publication and restore takes, so leaf numbers
//! follow the order in which versions were committed and a leaf is never rewritten.

use async_trait::async_trait;

use super::entries::lock_working_state;
use super::rows::{VERSION_COLUMNS, list_of, version_from_row};
use super::{Backend, RequiredColumns, Row, SqlStorage, Transaction, corrupt, query};
use crate::domain::{ListKind, LogEntry, LogLeaf, VersionRecord, Volgnummer};
use crate::storage::{LogStore, StorageError};

/// The number the log's next leaf gets.
async fn next_leaf<T: Transaction>(tx: &mut T) -> Result<i64, StorageError> {
    tx.fetch_one(query(
        "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_leaves",
    ))
    .await?
    .required_int(0)
}

async fn insert_leaf<T: Transaction>(
    tx: &mut T,
    index: i64,
    list: ListKind,
    volgnummer: Volgnummer,
    leaf: &LogLeaf,
) -> Result<(), StorageError> {
    tx.execute(
        query(
            "INSERT INTO log_leaves (leaf_index, list, volgnummer, leaf) VALUES ($1, $2, $3, $4)",
        )
        .int(index)
        .text(list.as_str())
        .int(volgnummer.get())
        .bytes(leaf.as_bytes()),
    )
    .await?;
    Ok(())
}

/// Appends the leaf of `record`, which this transaction stores, as the log's next leaf.
pub(super) async fn append_leaf<T: Transaction>(
    tx: &mut T,
    record: &VersionRecord,
) -> Result<(), StorageError> {
    let next = next_leaf(tx).await?;
    insert_leaf(
        tx,
        next,
        record.list,
        record.volgnummer,
        &LogLeaf::of(record),
    )
    .await
}

/// Writes a leaf a restore read from a bundle's log, which must be the log's next one: the
/// log is rebuilt leaf for leaf, so its tree is the one the bundle's checkpoint signs.
pub(super) async fn restore_leaf<T: Transaction>(
    tx: &mut T,
    entry: &LogEntry,
) -> Result<(), StorageError> {
    let next = next_leaf(tx).await?;
    if u64::try_from(next).ok() != Some(entry.index) {
        return Err(StorageError::RestoreSource(format!(
            "the log's leaf {} does not follow the {next} leaves restored",
            entry.index
        )));
    }
    insert_leaf(tx, next, entry.list, entry.volgnummer, &entry.leaf).await
}

/// Gives every version without a leaf its leaf, in publication order: by Tijdstempel, and
/// versions published together (one plan, one Tijdstempel) in the order a plan stores them
/// (`ListKind::PUBLICATION_ORDER`). Those are versions published before the log existed, and
/// after a restore the versions no bundle's log held (consumers' copies, bundles of
/// format 1 and 2). `tx` holds the working-state lock. Returns how many it appended.
pub(super) async fn append_unlogged<T: Transaction>(tx: &mut T) -> Result<u64, StorageError> {
    let plan_order: String = ListKind::PUBLICATION_ORDER
        .iter()
        .enumerate()
        .map(|(i, list)| format!(" WHEN '{}' THEN {i}", list.as_str()))
        .collect();
    let records = tx
        .fetch(query(format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE NOT EXISTS (SELECT 1 FROM log_leaves \
             WHERE log_leaves.list = versions.list AND log_leaves.volgnummer = versions.volgnummer) \
             ORDER BY versions.tijdstempel, CASE versions.list{plan_order} END, versions.volgnummer"
        )))
        .await?
        .iter()
        .map(version_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for record in &records {
        append_leaf(tx, record).await?;
    }
    Ok(records.len() as u64)
}

/// Gives versions published before the log existed their leaves (`append_unlogged`). Run
/// after the migrations; it takes the lock only when there is something to do.
pub(super) async fn catch_up<B: Backend>(storage: &SqlStorage<B>) -> Result<u64, StorageError> {
    let unlogged = "SELECT 1 FROM versions WHERE NOT EXISTS (SELECT 1 FROM log_leaves \
         WHERE log_leaves.list = versions.list AND log_leaves.volgnummer = versions.volgnummer) \
         LIMIT 1";
    if storage.0.fetch(query(unlogged)).await?.is_empty() {
        return Ok(0);
    }
    let mut tx = storage.0.begin_write().await?;
    lock_working_state(&mut tx).await?;
    let appended = append_unlogged(&mut tx).await?;
    tx.commit().await?;
    Ok(appended)
}

fn as_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl<B: Backend> LogStore for SqlStorage<B> {
    async fn log_head(&self) -> Result<(u64, String), StorageError> {
        let rows = self
            .0
            .fetch(query(
                "SELECT tree_size, root_hash FROM log_head WHERE id = 1",
            ))
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StorageError::Corrupt("the log head is missing".into()))?;
        let size = u64::try_from(row.required_int(0)?).map_err(corrupt)?;
        Ok((size, row.required_text(1)?))
    }

    async fn raise_log_head(&self, size: u64, root: &str) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        tx.execute(
            query("UPDATE log_head SET tree_size = $1, root_hash = $2 WHERE id = 1 AND tree_size < $1")
                .int(as_int(size))
                .text(root),
        )
        .await?;
        tx.commit().await
    }

    async fn log_entries(&self, from: u64, limit: u64) -> Result<Vec<LogEntry>, StorageError> {
        self.0
            .fetch(
                query(
                    "SELECT leaf_index, list, volgnummer, leaf FROM log_leaves \
                     WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2",
                )
                .int(as_int(from))
                .int(as_int(limit)),
            )
            .await?
            .iter()
            .map(|row| {
                let list = list_of(row, 1)?;
                Ok(LogEntry {
                    index: u64::try_from(row.required_int(0)?).map_err(corrupt)?,
                    list,
                    volgnummer: Volgnummer::new(row.required_int(2)?).map_err(corrupt)?,
                    leaf: LogLeaf::from_stored(row.bytes(3)?),
                })
            })
            .collect()
    }
}
