//! The transparency log's leaves (issue 26): appended in the transaction that stores their
//! version, under the working-state lock every publication and restore takes, so leaf numbers
//! follow the order in which versions were committed and a leaf is never rewritten.

use async_trait::async_trait;

use super::entries::lock_working_state;
use super::rows::{VERSION_COLUMNS, list_of, version_from_row};
use super::{Backend, RequiredColumns, Row, SqlStorage, Transaction, corrupt, query};
use crate::domain::{ListKind, LogEntry, LogLeaf, VersionRecord, Volgnummer};
use crate::storage::{LogStore, StorageError};

/// Appends the leaf of `record`, which this transaction stores, as the log's next leaf.
pub(super) async fn append_leaf<T: Transaction>(
    tx: &mut T,
    record: &VersionRecord,
) -> Result<(), StorageError> {
    let next = tx
        .fetch_one(query(
            "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_leaves",
        ))
        .await?
        .required_int(0)?;
    let leaf = LogLeaf::of(record);
    tx.execute(
        query(
            "INSERT INTO log_leaves (leaf_index, list, volgnummer, leaf) VALUES ($1, $2, $3, $4)",
        )
        .int(next)
        .text(record.list.as_str())
        .int(record.volgnummer.get())
        .bytes(leaf.as_bytes()),
    )
    .await?;
    Ok(())
}

/// Gives every version published before the log existed its leaf, in publication order:
/// by Tijdstempel, and versions published together (one plan, one Tijdstempel) in the order
/// a plan stores them (`ListKind::PUBLICATION_ORDER`). Run after the migrations; a no-op once
/// done.
pub(super) async fn catch_up<B: Backend>(storage: &SqlStorage<B>) -> Result<u64, StorageError> {
    let plan_order: String = ListKind::PUBLICATION_ORDER
        .iter()
        .enumerate()
        .map(|(i, list)| format!(" WHEN '{}' THEN {i}", list.as_str()))
        .collect();
    let unlogged = format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE NOT EXISTS (SELECT 1 FROM log_leaves \
         WHERE log_leaves.list = versions.list AND log_leaves.volgnummer = versions.volgnummer) \
         ORDER BY versions.tijdstempel, CASE versions.list{plan_order} END, versions.volgnummer"
    );
    if storage.0.fetch(query(unlogged.clone())).await?.is_empty() {
        return Ok(0);
    }
    let mut tx = storage.0.begin_write().await?;
    lock_working_state(&mut tx).await?;
    let records = tx
        .fetch(query(unlogged))
        .await?
        .iter()
        .map(version_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for record in &records {
        append_leaf(&mut tx, record).await?;
    }
    tx.commit().await?;
    Ok(records.len() as u64)
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
