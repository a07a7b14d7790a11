//! The working state: list heads, entries with their versions and tombstones, a change, an
//! import, a consistent snapshot, and the lock every writer of the working state takes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit::insert_audit;
use super::rows::{current_version_query, list_of, version_from_row, volgnummer};
use super::{
    Backend, ROWS_PER_STATEMENT, RequiredColumns, Row, SqlStorage, Transaction, placeholders, query,
};
use crate::domain::{
    AuditRecord, EntryChange, Lijst, ListEntries, ListHead, ListKind, ListSnapshot, ListStanding,
    Snapshot, Volgnummer, WorkingState,
};
use crate::storage::{ImportOutcome, ListStore, StorageError};

pub(super) async fn read_head<T: Transaction>(
    tx: &mut T,
    list: ListKind,
) -> Result<ListHead, StorageError> {
    let row = tx
        .fetch_one(
            query(
                "SELECT last_volgnummer, imported_volgnummer, imported_at FROM list_heads \
                 WHERE list = $1",
            )
            .text(list.as_str()),
        )
        .await?;
    Ok(ListHead {
        list,
        last_volgnummer: volgnummer(list, row.int(0)?)?,
        imported_volgnummer: volgnummer(list, row.int(1)?)?,
        imported_at: row.instant(2)?,
    })
}

pub(super) async fn read_working_state<T: Transaction>(
    tx: &mut T,
    list: ListKind,
) -> Result<WorkingState, StorageError> {
    let rows = tx
        .fetch(
            query("SELECT entry_key, body, version FROM entries WHERE list = $1")
                .text(list.as_str()),
        )
        .await?;
    let mut versions = BTreeMap::new();
    let mut bodies = Vec::with_capacity(rows.len());
    for row in &rows {
        versions.insert(row.required_text(0)?, row.required_int(2)?);
        if let Some(body) = row.json(1)? {
            bodies.push(body);
        }
    }
    // 10 000 Zorgaanbieders take a tenth of a second to parse: not on an async worker,
    // where every request that worker holds would wait for it.
    let entries = tokio::task::spawn_blocking(move || {
        ListEntries::from_json_rows(list, bodies.iter().map(String::as_str))
    })
    .await
    .expect("parsing entries does not panic")
    .map_err(|e| StorageError::Corrupt(format!("{list} entries: {e}")))?;
    Ok(WorkingState { entries, versions })
}

/// Records that a list's working state changed (on PostgreSQL this takes the list head's row
/// lock, which serialises the change with publications); a GNL removal retires the ids for good.
pub(super) async fn state_changed<T: Transaction>(
    tx: &mut T,
    list: ListKind,
    removed: &[String],
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    tx.execute(
        query("UPDATE list_heads SET revision = revision + 1 WHERE list = $1").text(list.as_str()),
    )
    .await?;
    if list == ListKind::Gnl {
        for ids in removed.chunks(ROWS_PER_STATEMENT) {
            let mut insert = query(format!(
                "INSERT INTO retired_gegevensdienst_ids (gegevensdienst_id, retired_at) \
                 VALUES {} ON CONFLICT DO NOTHING",
                placeholders(ids.len(), 2, 1)
            ));
            for id in ids {
                insert = insert.text(id.as_str()).instant(at);
            }
            tx.execute(insert).await?;
        }
    }
    Ok(())
}

/// Writes one entry change if the entry is still at `base_version`; returns the new version.
pub(super) async fn write_change<T: Transaction>(
    tx: &mut T,
    list: ListKind,
    key: &str,
    body: Option<&str>,
    base_version: i64,
    at: DateTime<Utc>,
) -> Result<i64, StorageError> {
    let current = tx
        .fetch_optional(
            query("SELECT version FROM entries WHERE list = $1 AND entry_key = $2")
                .text(list.as_str())
                .text(key)
                .for_update(),
        )
        .await?
        .map(|row| row.required_int(0))
        .transpose()?;
    let stale = |current: i64| StorageError::StaleEntry {
        list,
        key: key.to_owned(),
        expected: base_version,
        current,
    };
    if current.unwrap_or(0) != base_version {
        return Err(stale(current.unwrap_or(0)));
    }
    // A concurrent first insert of the same key (PostgreSQL: no row to lock above) makes this
    // change no row: stale too.
    let written = tx
        .execute(
            query(
                "INSERT INTO entries (list, entry_key, version, body, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (list, entry_key) DO UPDATE SET version = excluded.version, \
                 body = excluded.body, updated_at = excluded.updated_at \
                 WHERE entries.version = $6",
            )
            .text(list.as_str())
            .text(key)
            .int(base_version + 1)
            .json(body)
            .instant(at)
            .int(base_version),
        )
        .await?;
    if written == 0 {
        return Err(stale(base_version + 1));
    }
    let removed = match body {
        None => vec![key.to_owned()],
        Some(_) => Vec::new(),
    };
    state_changed(tx, list, &removed, at).await?;
    Ok(base_version + 1)
}

/// Where `list` stands as `tx` sees it.
pub(super) async fn read_standing<T: Transaction>(
    tx: &mut T,
    list: ListKind,
) -> Result<ListStanding, StorageError> {
    let row = tx
        .fetch_one(
            query("SELECT revision, published_revision FROM list_heads WHERE list = $1")
                .text(list.as_str()),
        )
        .await?;
    let (revision, published_revision) = (row.required_int(0)?, row.int(1)?);
    Ok(ListStanding {
        head: read_head(tx, list).await?,
        revision,
        published_revision,
        current: tx
            .fetch_optional(current_version_query(list))
            .await?
            .map(|row| version_from_row(&row))
            .transpose()?,
    })
}

/// All four lists, their heads and current versions, as `tx` sees them; the working state of
/// a list whose revision is still the one in `known` is shared with it rather than read again.
pub(super) async fn read_snapshot<T: Transaction>(
    tx: &mut T,
    known: Option<&Snapshot>,
) -> Result<Snapshot, StorageError> {
    let mut lists = BTreeMap::new();
    for list in ListKind::ALL {
        let standing = read_standing(tx, list).await?;
        let state = match known
            .and_then(|k| k.lists.get(&list))
            .filter(|k| k.standing.revision == standing.revision)
        {
            Some(unchanged) => unchanged.state.clone(),
            None => Arc::new(read_working_state(tx, list).await?),
        };
        lists.insert(list, ListSnapshot { state, standing });
    }
    let retired_gegevensdienst_ids = tx
        .fetch(query(
            "SELECT gegevensdienst_id FROM retired_gegevensdienst_ids",
        ))
        .await?
        .iter()
        .map(|row| row.required_text(0))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(Snapshot {
        lists,
        retired_gegevensdienst_ids,
    })
}

/// Holds off every other writer of the working state until `tx` ends (PostgreSQL: all list
/// heads locked, always in this order, so two such writers never deadlock; SQLite's write
/// transaction already excludes them) and returns each list's revision.
pub(super) async fn lock_working_state<T: Transaction>(
    tx: &mut T,
) -> Result<BTreeMap<ListKind, i64>, StorageError> {
    tx.fetch(query("SELECT list, revision FROM list_heads ORDER BY list").for_update())
        .await?
        .iter()
        .map(|row| Ok((list_of(row, 0)?, row.required_int(1)?)))
        .collect()
}

#[async_trait]
impl<B: Backend> ListStore for SqlStorage<B> {
    async fn working_state(&self, list: ListKind) -> Result<WorkingState, StorageError> {
        let mut tx = self.0.begin_read().await?;
        let state = read_working_state(&mut tx, list).await?;
        tx.commit().await?;
        Ok(state)
    }

    async fn apply_change(
        &self,
        change: &EntryChange,
        at: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let body = change.body_json();
        let mut tx = self.0.begin_write().await?;
        lock_working_state(&mut tx).await?;
        let version = write_change(
            &mut tx,
            change.list(),
            change.key(),
            body.as_deref(),
            change.base_version(),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn import_list(
        &self,
        list: &Lijst,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<ImportOutcome, StorageError> {
        let kind = list.kind();
        let rows = list.entries.to_json_rows();
        let mut tx = self.0.begin_write().await?;
        lock_working_state(&mut tx).await?;
        let head = read_head(&mut tx, kind).await?;
        let imported: HashSet<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        let removed: Vec<String> = tx
            .fetch(
                query("SELECT entry_key FROM entries WHERE list = $1 AND body IS NOT NULL")
                    .text(kind.as_str()),
            )
            .await?
            .iter()
            .map(|row| row.required_text(0))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|key| !imported.contains(key.as_str()))
            .collect();
        for keys in removed.chunks(ROWS_PER_STATEMENT) {
            let mut tombstones = query(format!(
                "UPDATE entries SET body = NULL, version = version + 1, updated_at = $1 \
                 WHERE list = $2 AND entry_key IN ({})",
                (3..3 + keys.len())
                    .map(|n| format!("${n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .instant(at)
            .text(kind.as_str());
            for key in keys {
                tombstones = tombstones.text(key.as_str());
            }
            tx.execute(tombstones).await?;
        }
        let mut changed = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut upsert = query(format!(
                "INSERT INTO entries (list, entry_key, version, body, updated_at) VALUES {} \
                 ON CONFLICT (list, entry_key) DO UPDATE SET version = entries.version + 1, \
                 body = excluded.body, updated_at = excluded.updated_at \
                 WHERE entries.body IS DISTINCT FROM excluded.body",
                placeholders(chunk.len(), 5, 1)
            ));
            for (key, body) in chunk {
                upsert = upsert
                    .text(kind.as_str())
                    .text(key.as_str())
                    .int(1)
                    .json(Some(body))
                    .instant(at);
            }
            changed += tx.execute(upsert).await? as usize;
        }
        if changed > 0 || !removed.is_empty() {
            state_changed(&mut tx, kind, &removed, at).await?;
        }
        let published_here = tx
            .fetch_optional(
                query("SELECT volgnummer FROM versions WHERE list = $1 LIMIT 1")
                    .text(kind.as_str()),
            )
            .await?
            .is_some();
        let last = head
            .last_after_import(list.volgnummer, published_here)
            .map_or(0, Volgnummer::get);
        tx.execute(
            query(
                "UPDATE list_heads SET last_volgnummer = $1, imported_volgnummer = $2, \
                 imported_at = $3 WHERE list = $4",
            )
            .int(last)
            .int(list.volgnummer.get())
            .instant(at)
            .text(kind.as_str()),
        )
        .await?;
        insert_audit(&mut tx, audit).await?;
        let head = read_head(&mut tx, kind).await?;
        tx.commit().await?;
        Ok(ImportOutcome {
            entries: rows.len(),
            removed: removed.len(),
            changed,
            head,
        })
    }

    async fn list_head(&self, list: ListKind) -> Result<ListHead, StorageError> {
        let mut tx = self.0.begin_read().await?;
        let head = read_head(&mut tx, list).await?;
        tx.commit().await?;
        Ok(head)
    }

    async fn revisions(&self) -> Result<BTreeMap<ListKind, i64>, StorageError> {
        self.0
            .fetch(query("SELECT list, revision FROM list_heads"))
            .await?
            .iter()
            .map(|row| Ok((list_of(row, 0)?, row.required_int(1)?)))
            .collect()
    }

    async fn snapshot_reusing(&self, known: Option<&Snapshot>) -> Result<Snapshot, StorageError> {
        let mut tx = self.0.begin_read().await?;
        let snapshot = read_snapshot(&mut tx, known).await?;
        tx.commit().await?;
        Ok(snapshot)
    }

    async fn list_standing(&self, list: ListKind) -> Result<ListStanding, StorageError> {
        let mut tx = self.0.begin_read().await?;
        let standing = read_standing(&mut tx, list).await?;
        tx.commit().await?;
        Ok(standing)
    }
}
