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

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

mod retention;
mod sla;

use super::{
    AuditQuery, ImportOutcome, MutationQuery, NewVersion, OpenQueueQuery, Recheck, Storage,
    StorageError, StoredVersion,
};
use crate::domain::{
    AuditOutcome, AuditRecord, Decision, EntryChange, Lijst, ListEntries, ListHead, ListKind,
    ListSnapshot, MutationDecision, MutationRecord, MutationSla, MutationStatus, NewMutation,
    Operation, SlaCompletion, SlaDeadline, Snapshot, Tijdstempel, VersionRecord, Volgnummer,
    WorkingState,
};

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

fn list_of(row: &impl Row, column: usize) -> Result<ListKind, StorageError> {
    row.required_text(column)?.parse().map_err(corrupt)
}

/// The columns `version_from_row` reads, in order.
const VERSION_COLUMNS: &str = "versions.list, versions.volgnummer, versions.tijdstempel, \
     versions.valid_from, versions.expires_at, versions.grace_seconds, versions.superseded_at, \
     versions.grace_until, versions.sha256, versions.previous_sha256, versions.heartbeat, \
     versions.size_bytes, versions.body_sha256, versions.purged_at";

/// The newest version of `list`, in `VERSION_COLUMNS`.
fn current_version_query<'a>(list: ListKind) -> Query<'a> {
    query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE list = $1 ORDER BY volgnummer DESC LIMIT 1"
    ))
    .text(list.as_str())
}

fn version_from_row(row: &impl Row) -> Result<VersionRecord, StorageError> {
    let list = list_of(row, 0)?;
    Ok(VersionRecord {
        list,
        volgnummer: Volgnummer::new(row.required_int(1)?)
            .map_err(|e| StorageError::Corrupt(format!("{list} version: {e}")))?,
        tijdstempel: Tijdstempel::new(row.required_instant(2)?),
        valid_from: row.required_instant(3)?,
        expires_at: row.required_instant(4)?,
        grace_seconds: row.required_int(5)?,
        superseded_at: row.instant(6)?,
        grace_until: row.instant(7)?,
        sha256: row.required_text(8)?,
        previous_sha256: row.text(9)?,
        heartbeat: row.boolean(10)?,
        size_bytes: row.required_int(11)?,
        body_sha256: row.required_text(12)?,
        purged_at: row.instant(13)?,
    })
}

/// The columns `mutation_from_row` reads, in order.
const MUTATION_COLUMNS: &str = "id, list, entry_key, operation, body, base_version, on_behalf_of, \
     reference, urgent, agreed_deadline, effective_from, status, submitted_by, submitted_by_subject, \
     submitted_at, decided_by, decided_by_subject, decided_at, rejection_reason, withdrawn_at, \
     applied_at, published_volgnummer, published_at, sla_deadline, sla_calendar, sla_outcome, \
     sla_completed_at, sla_werkdagen, sla_excluded_reason";

/// A mutation with its stored body (the exact JSON to write into the working state).
fn mutation_from_row(row: &impl Row) -> Result<(MutationRecord, Option<String>), StorageError> {
    let operation = match row.required_text(3)?.as_str() {
        "upsert" => Operation::Upsert,
        "delete" => Operation::Delete,
        other => return Err(corrupt(format!("unknown mutation operation \"{other}\""))),
    };
    let body = row.json(4)?;
    let entry = body
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| corrupt(format!("mutation body: {e}")))?;
    let record = MutationRecord {
        id: row.required_int(0)?,
        list: list_of(row, 1)?,
        entry_key: row.required_text(2)?,
        operation,
        entry,
        base_version: row.required_int(5)?,
        on_behalf_of: row.required_text(6)?,
        reference: row.required_text(7)?,
        urgent: row.boolean(8)?,
        agreed_deadline: row.instant(9)?,
        effective_from: row.instant(10)?,
        status: row.required_text(11)?.parse().map_err(corrupt)?,
        submitted_by: row.required_text(12)?,
        submitted_by_subject: row.required_text(13)?,
        submitted_at: row.required_instant(14)?,
        decided_by: row.text(15)?,
        decided_by_subject: row.text(16)?,
        decided_at: row.instant(17)?,
        rejection_reason: row.text(18)?,
        withdrawn_at: row.instant(19)?,
        applied_at: row.instant(20)?,
        published_volgnummer: row.int(21)?,
        published_at: row.instant(22)?,
        sla: sla_from_row(row, 23)?,
    };
    Ok((record, body))
}

/// The six SLA columns from `first` on.
fn sla_from_row(row: &impl Row, first: usize) -> Result<MutationSla, StorageError> {
    let deadline = match (row.instant(first)?, row.text(first + 1)?) {
        (Some(deadline), Some(calendar)) => Some(SlaDeadline { deadline, calendar }),
        _ => None,
    };
    let completion = match (row.text(first + 2)?, row.instant(first + 3)?) {
        (Some(outcome), Some(completed_at)) => Some(SlaCompletion {
            outcome: outcome.parse().map_err(corrupt)?,
            completed_at,
            werkdagen: row.float(first + 4)?,
            excluded_reason: row.text(first + 5)?,
        }),
        _ => None,
    };
    Ok(MutationSla {
        deadline,
        completion,
    })
}

fn volgnummer(list: ListKind, value: Option<i64>) -> Result<Option<Volgnummer>, StorageError> {
    match value.unwrap_or(0) {
        0 => Ok(None),
        n => Volgnummer::new(n)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{list} head: {e}"))),
    }
}

const OPEN_MUTATION: &str = "SELECT id FROM mutations WHERE list = $1 AND entry_key = $2 \
     AND (status = 'submitted' OR (status = 'approved' AND applied_at IS NULL))";

/// The name of the partial unique index that keeps one open mutation per entry.
const ONE_OPEN_PER_ENTRY: &str = "mutations_one_open_per_entry";

async fn read_head<T: Transaction>(tx: &mut T, list: ListKind) -> Result<ListHead, StorageError> {
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

async fn read_working_state<T: Transaction>(
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

async fn insert_audit<T: Transaction>(
    tx: &mut T,
    record: &AuditRecord,
) -> Result<(), StorageError> {
    let record = &record.printable();
    tx.execute(
        query(
            "INSERT INTO audit_log (at, actor_subject, actor_fingerprint, role, action, object, \
             on_behalf_of, outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .instant(record.at)
        .text(record.actor_subject.as_str())
        .text(record.actor_fingerprint.as_deref())
        .text(record.role.as_deref())
        .text(record.action.as_str())
        .text(record.object.as_deref())
        .text(record.on_behalf_of.as_deref())
        .text(record.outcome.as_str())
        .text(record.reason.as_deref()),
    )
    .await?;
    Ok(())
}

/// Records that a list's working state changed (on PostgreSQL this takes the list head's row
/// lock, which serialises the change with publications); a GNL removal retires the ids for good.
async fn state_changed<T: Transaction>(
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
async fn write_change<T: Transaction>(
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

/// A mutation (locked on PostgreSQL) with its stored body.
async fn read_mutation<T: Transaction>(
    tx: &mut T,
    id: i64,
) -> Result<(MutationRecord, Option<String>), StorageError> {
    let row = tx
        .fetch_optional(
            query(format!(
                "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = $1"
            ))
            .int(id)
            .for_update(),
        )
        .await?
        .ok_or(StorageError::UnknownMutation(id))?;
    mutation_from_row(&row)
}

/// Applies an approved mutation's change and records when.
async fn apply_mutation<T: Transaction>(
    tx: &mut T,
    record: &MutationRecord,
    body: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    write_change(
        tx,
        record.list,
        &record.entry_key,
        body,
        record.base_version,
        at,
    )
    .await?;
    tx.execute(
        query("UPDATE mutations SET applied_at = $1 WHERE id = $2")
            .instant(at)
            .int(record.id),
    )
    .await?;
    Ok(())
}

/// Stores a decision's own columns.
fn decision_update<'a>(d: &'a MutationDecision) -> Query<'a> {
    match &d.decision {
        Decision::Approve => query(
            "UPDATE mutations SET status = 'approved', decided_by = $1, decided_by_subject = $2, \
             decided_at = $3 WHERE id = $4",
        )
        .text(d.by.as_str())
        .text(d.by_subject.as_str())
        .instant(d.at)
        .int(d.id),
        Decision::Reject { reason } => query(
            "UPDATE mutations SET status = 'rejected', decided_by = $1, decided_by_subject = $2, \
             decided_at = $3, rejection_reason = $5 WHERE id = $4",
        )
        .text(d.by.as_str())
        .text(d.by_subject.as_str())
        .instant(d.at)
        .int(d.id)
        .text(reason.as_str()),
        Decision::Withdraw => {
            query("UPDATE mutations SET status = 'withdrawn', withdrawn_at = $1 WHERE id = $2")
                .instant(d.at)
                .int(d.id)
        }
    }
}

/// Whether a database error is the one-open-mutation-per-entry index refusing an insert.
fn is_second_open_mutation(e: &StorageError) -> bool {
    matches!(e, StorageError::Database(sqlx::Error::Database(e))
        if e.constraint() == Some(ONE_OPEN_PER_ENTRY))
}

/// All four lists, their heads and current versions, as `tx` sees them; the working state of a list whose revision is still the one in
/// `known` is shared with it rather than read again.
async fn read_snapshot<T: Transaction>(
    tx: &mut T,
    known: Option<&Snapshot>,
) -> Result<Snapshot, StorageError> {
    let mut lists = BTreeMap::new();
    for list in ListKind::ALL {
        let revision = tx
            .fetch_one(query("SELECT revision FROM list_heads WHERE list = $1").text(list.as_str()))
            .await?
            .required_int(0)?;
        let state = match known
            .and_then(|k| k.lists.get(&list))
            .filter(|k| k.revision == revision)
        {
            Some(unchanged) => unchanged.state.clone(),
            None => Arc::new(read_working_state(tx, list).await?),
        };
        let head = read_head(tx, list).await?;
        let current = tx
            .fetch_optional(current_version_query(list))
            .await?
            .map(|row| version_from_row(&row))
            .transpose()?;
        lists.insert(
            list,
            ListSnapshot {
                state,
                head,
                revision,
                current,
            },
        );
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
async fn lock_working_state<T: Transaction>(
    tx: &mut T,
) -> Result<BTreeMap<ListKind, i64>, StorageError> {
    tx.fetch(query("SELECT list, revision FROM list_heads ORDER BY list").for_update())
        .await?
        .iter()
        .map(|row| Ok((list_of(row, 0)?, row.required_int(1)?)))
        .collect()
}

/// Approves, rejects or withdraws a mutation, with its audit record.
async fn decide<T: Transaction>(
    tx: &mut T,
    d: &MutationDecision,
    audit: &AuditRecord,
    recheck: Option<&Recheck<'_>>,
) -> Result<MutationRecord, StorageError> {
    let revisions = match recheck {
        Some(_) => Some(lock_working_state(tx).await?),
        None => None,
    };
    let (record, body) = read_mutation(tx, d.id).await?;
    d.check(&record)?;
    if let (Some(recheck), Some(revisions)) = (recheck, revisions) {
        let snapshot = match recheck
            .cached
            .clone()
            .filter(|s| s.at_revisions(&revisions))
        {
            Some(cached) => cached,
            None => Arc::new(read_snapshot(tx, recheck.cached.as_deref()).await?),
        };
        (recheck.rules)(&record, &snapshot)?;
    }
    tx.execute(decision_update(d)).await?;
    if d.applies_now(&record) {
        apply_mutation(tx, &record, body.as_deref(), d.at).await?;
    }
    insert_audit(tx, audit).await?;
    Ok(read_mutation(tx, d.id).await?.0)
}

/// Applies one approved mutation whose `effective_from` has come, or rejects it when it no
/// longer fits; `None` when another replica got there first.
async fn apply_due<T: Transaction>(
    tx: &mut T,
    id: i64,
    at: DateTime<Utc>,
) -> Result<Option<MutationRecord>, StorageError> {
    lock_working_state(tx).await?;
    let (record, body) = read_mutation(tx, id).await?;
    if record.applied_at.is_some() || record.status != MutationStatus::Approved {
        return Ok(None);
    }
    match apply_mutation(tx, &record, body.as_deref(), at).await {
        Ok(()) => {}
        Err(e @ StorageError::StaleEntry { .. }) => {
            let reason = format!("no longer fits when it became effective: {e}");
            tx.execute(
                query(
                    "UPDATE mutations SET status = 'rejected', rejection_reason = $1 WHERE id = $2",
                )
                .text(reason.as_str())
                .int(id),
            )
            .await?;
        }
        Err(e) => return Err(e),
    }
    Ok(Some(read_mutation(tx, id).await?.0))
}

/// Stores one version as its list's newest (see `Storage::store_versions`).
async fn store_version<T: Transaction>(
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
    let superseded = tx
        .fetch(
            query(
                "SELECT volgnummer, grace_seconds FROM versions \
                 WHERE list = $1 AND superseded_at IS NULL",
            )
            .text(list.as_str()),
        )
        .await?;
    for row in superseded {
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
    tx.execute(
        query("UPDATE list_heads SET last_volgnummer = $1 WHERE list = $2")
            .int(record.volgnummer.get())
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
impl<B: Backend> Storage for SqlStorage<B> {
    async fn migrate(&self) -> Result<(), StorageError> {
        self.0.migrate().await
    }

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

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await
    }

    async fn submit_mutation(
        &self,
        m: &NewMutation,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError> {
        let (list, key) = (m.change.list(), m.change.key());
        let open = |id| StorageError::OpenMutation {
            list,
            key: key.to_owned(),
            id,
        };
        let open_query = || query(OPEN_MUTATION).text(list.as_str()).text(key);
        let mut tx = self.0.begin_write().await?;
        if let Some(row) = tx.fetch_optional(open_query()).await? {
            return Err(open(row.required_int(0)?));
        }
        let current = tx
            .fetch_optional(
                query("SELECT version FROM entries WHERE list = $1 AND entry_key = $2")
                    .text(list.as_str())
                    .text(key),
            )
            .await?
            .map(|row| row.required_int(0))
            .transpose()?
            .unwrap_or(0);
        if current != m.change.base_version() {
            return Err(StorageError::StaleEntry {
                list,
                key: key.to_owned(),
                expected: m.change.base_version(),
                current,
            });
        }
        let body = m.change.body_json();
        let inserted = tx
            .fetch_one(
                query(
                    "INSERT INTO mutations (list, entry_key, operation, body, base_version, \
                     on_behalf_of, reference, urgent, agreed_deadline, effective_from, status, \
                     submitted_by, submitted_by_subject, submitted_at, sla_deadline, \
                     sla_calendar) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'submitted', \
                     $11, $12, $13, $14, $15) RETURNING id",
                )
                .text(list.as_str())
                .text(key)
                .text(m.change.operation().as_str())
                .json(body.as_deref())
                .int(m.change.base_version())
                .text(m.on_behalf_of.as_str())
                .text(m.reference.as_str())
                .boolean(m.urgent)
                .instant(m.agreed_deadline)
                .instant(m.effective_from)
                .text(m.submitted_by.as_str())
                .text(m.submitted_by_subject.as_str())
                .instant(m.submitted_at)
                .instant(m.sla.deadline)
                .text(m.sla.calendar.as_str()),
            )
            .await;
        let id = match inserted {
            Ok(row) => row.required_int(0)?,
            // A concurrent submission for the same entry committed first: the unique index
            // saw it, this transaction's snapshot (PostgreSQL) did not.
            Err(e) if is_second_open_mutation(&e) => {
                drop(tx);
                let id = self.0.fetch(open_query()).await?;
                return Err(open(
                    id.first()
                        .map(|r| r.required_int(0))
                        .transpose()?
                        .unwrap_or(0),
                ));
            }
            Err(e) => return Err(e),
        };
        insert_audit(&mut tx, &audit.about(format!("mutations/{id}"))).await?;
        let (record, _) = read_mutation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn decide_mutation(
        &self,
        d: &MutationDecision,
        audit: &AuditRecord,
        recheck: Option<&Recheck<'_>>,
    ) -> Result<MutationRecord, StorageError> {
        let mut tx = self.0.begin_write().await?;
        let record = decide(&mut tx, d, audit, recheck).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn apply_due_mutations(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        let due = self
            .0
            .fetch(
                query(
                    "SELECT id FROM mutations WHERE status = 'approved' AND applied_at IS NULL \
                     AND effective_from <= $1 ORDER BY effective_from, id",
                )
                .instant(at),
            )
            .await?;
        let mut done = Vec::new();
        for row in due {
            let mut tx = self.0.begin_write().await?;
            let applied = apply_due(&mut tx, row.required_int(0)?, at).await?;
            tx.commit().await?;
            done.extend(applied);
        }
        Ok(done)
    }

    async fn unpublished_changes(&self) -> Result<Vec<(ListKind, DateTime<Utc>)>, StorageError> {
        self.0
            .fetch(query(
                "SELECT list, MIN(applied_at) FROM mutations \
                 WHERE status = 'approved' AND applied_at IS NOT NULL GROUP BY list ORDER BY list",
            ))
            .await?
            .iter()
            .map(|row| Ok((list_of(row, 0)?, row.required_instant(1)?)))
            .collect()
    }

    async fn mutations(&self, q: &MutationQuery) -> Result<Vec<MutationRecord>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE ($1 IS NULL OR status = $1) \
                     AND ($2 IS NULL OR list = $2) \
                     AND ($3 IS NULL OR submitted_by = $3 OR submitted_by_subject = $3) \
                     AND ($4 IS NULL OR submitted_at < $4) AND ($5 IS NULL OR submitted_at >= $5) \
                     ORDER BY submitted_at DESC, id DESC LIMIT $6"
                ))
                .text(q.status.map(MutationStatus::as_str))
                .text(q.list.map(ListKind::as_str))
                .text(q.submitter.as_deref())
                .instant(q.submitted_before)
                .instant(q.submitted_after)
                .int(i64::from(q.limit)),
            )
            .await?
            .iter()
            .map(|row| Ok(mutation_from_row(row)?.0))
            .collect()
    }

    async fn open_mutations(
        &self,
        q: &OpenQueueQuery,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        // Case-insensitive "contains": the pattern is lowered here, the column in SQL
        // (SQLite lowers ASCII letters only; PostgreSQL every letter).
        let contains = |part: &Option<String>| {
            part.as_deref().map(|p| {
                let escaped: String = p
                    .to_lowercase()
                    .chars()
                    .flat_map(|c| match c {
                        '%' | '_' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                format!("%{escaped}%")
            })
        };
        let (on_behalf_of, submitter) = (contains(&q.on_behalf_of), contains(&q.submitter_subject));
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations \
                     WHERE status IN ('submitted', 'approved') AND ($1 IS NULL OR status = $1) \
                     AND ($2 IS NULL OR list = $2) \
                     AND ($3 IS NULL OR LOWER(on_behalf_of) LIKE $3 ESCAPE '\\') \
                     AND ($4 IS NULL OR LOWER(submitted_by_subject) LIKE $4 ESCAPE '\\') \
                     AND ($5 IS NULL OR submitted_at <= $5) \
                     ORDER BY sla_deadline IS NULL, sla_deadline, id LIMIT $6 OFFSET $7"
                ))
                .text(q.status.map(MutationStatus::as_str))
                .text(q.list.map(ListKind::as_str))
                .text(on_behalf_of.as_deref())
                .text(submitter.as_deref())
                .instant(q.submitted_before)
                .int(i64::from(q.limit))
                .int(i64::from(q.offset)),
            )
            .await?
            .iter()
            .map(|row| Ok(mutation_from_row(row)?.0))
            .collect()
    }

    async fn mutation(&self, id: i64) -> Result<Option<MutationRecord>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = $1"
                ))
                .int(id),
            )
            .await?
            .first()
            .map(|row| Ok(mutation_from_row(row)?.0))
            .transpose()
    }

    async fn audit_records(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        self.0
            .fetch(
                query(
                    "SELECT at, actor_subject, actor_fingerprint, role, action, object, \
                     on_behalf_of, outcome, reason FROM audit_log WHERE ($1 IS NULL OR at >= $1) \
                     AND ($2 IS NULL OR at < $2) \
                     AND ($3 IS NULL OR actor_subject = $3 OR actor_fingerprint = $3) \
                     AND ($4 IS NULL OR substr(action, 1, length($4)) = $4) \
                     AND ($5 IS NULL OR object = $5) AND ($6 IS NULL OR outcome = $6) \
                     ORDER BY at DESC, id DESC LIMIT $7",
                )
                .instant(q.since)
                .instant(q.until)
                .text(q.actor.as_deref())
                .text(q.action.as_deref())
                .text(q.object.as_deref())
                .text(q.outcome.map(AuditOutcome::as_str))
                .int(i64::from(q.limit)),
            )
            .await?
            .iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: row.required_instant(0)?,
                    actor_subject: row.required_text(1)?,
                    actor_fingerprint: row.text(2)?,
                    role: row.text(3)?,
                    action: row.required_text(4)?,
                    object: row.text(5)?,
                    on_behalf_of: row.text(6)?,
                    outcome: row.required_text(7)?.parse().map_err(corrupt)?,
                    reason: row.text(8)?,
                })
            })
            .collect()
    }
}
