//! What a node's database holds besides its published versions — mutations, the audit log,
//! the working state — as plain rows that an archive bundle carries and a restore writes
//! back (issue 23), and the role that reads and writes them.
//!
//! The rows are the bundle's format too (auditors keep bundles for years and read them with
//! their own tools), so they restate the columns on purpose — every one, in plain values,
//! JSON bodies as the text stored — rather than the domain records, which may change.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{StorageError, StoredVersion};
use crate::domain::{AuditOutcome, ListKind, LogEntry, MutationStatus, Operation, SlaOutcome};

/// A mutation, every column as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutationRow {
    pub id: i64,
    pub list: ListKind,
    pub entry_key: String,
    pub operation: Operation,
    /// The entry an upsert writes, as the JSON text stored.
    pub body: Option<String>,
    pub base_version: i64,
    pub on_behalf_of: String,
    pub reference: String,
    pub urgent: bool,
    pub agreed_deadline: Option<DateTime<Utc>>,
    pub effective_from: Option<DateTime<Utc>>,
    pub status: MutationStatus,
    pub submitted_by: String,
    pub submitted_by_subject: String,
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_by_subject: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub applied_at: Option<DateTime<Utc>>,
    pub published_volgnummer: Option<i64>,
    pub published_at: Option<DateTime<Utc>>,
    pub sla_deadline: Option<DateTime<Utc>>,
    pub sla_calendar: Option<String>,
    pub sla_outcome: Option<SlaOutcome>,
    pub sla_completed_at: Option<DateTime<Utc>>,
    pub sla_werkdagen: Option<f64>,
    pub sla_excluded_reason: Option<String>,
}

impl MutationRow {
    /// The newest instant anything happened to the mutation.
    pub fn last_change(&self) -> DateTime<Utc> {
        [
            self.decided_at,
            self.withdrawn_at,
            self.applied_at,
            self.published_at,
            self.sla_completed_at,
        ]
        .into_iter()
        .flatten()
        .fold(self.submitted_at, DateTime::max)
    }
}

/// An audit record with its id, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_subject: String,
    pub actor_fingerprint: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub object: Option<String>,
    pub on_behalf_of: Option<String>,
    pub outcome: AuditOutcome,
    pub reason: Option<String>,
}

/// A list's head: its numbering and the working state's revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadRow {
    pub list: ListKind,
    pub last_volgnummer: i64,
    pub revision: i64,
    pub imported_volgnummer: Option<i64>,
    pub imported_at: Option<DateTime<Utc>>,
}

/// An entry of a list's working state (a removed one keeps its version, without a body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRow {
    pub list: ListKind,
    pub entry_key: String,
    pub version: i64,
    pub body: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A Gegevensdienst id that may never be used again (SPEC §4 rule 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredRow {
    pub gegevensdienst_id: String,
    pub retired_at: DateTime<Utc>,
}

/// The record of a restore: the one gap a list's chain may have. After `after_volgnummer`
/// (the last version recovered, 0 when none) the list continues at `next_volgnummer`, naming
/// that version as its predecessor; the Volgnummers in between may have been published
/// before the loss and are never used again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRecord {
    pub list: ListKind,
    pub at: DateTime<Utc>,
    pub after_volgnummer: i64,
    pub after_sha256: Option<String>,
    pub next_volgnummer: i64,
    pub recovered_up_to: DateTime<Utc>,
}

impl RestoreRecord {
    /// Whether this record allows a list's chain to jump from (`n`, `sha256`) to `next`
    /// naming `previous` as its predecessor.
    pub fn allows(
        &self,
        list: ListKind,
        n: i64,
        sha256: &str,
        next: i64,
        previous: Option<&str>,
    ) -> bool {
        self.list == list
            && self.after_volgnummer == n
            && self.after_sha256.as_deref() == Some(sha256)
            && self.next_volgnummer == next
            && previous == Some(sha256)
    }
}

/// One line of a working-state snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StateLine {
    Head(HeadRow),
    Entry(EntryRow),
    Retired(RetiredRow),
    Restore(RestoreRecord),
}

/// A published version brought back: as stored, except that a purged one has no body.
#[derive(Debug, Clone)]
pub struct RestoredVersion {
    pub version: StoredVersion,
    /// The body's size, when it has one.
    pub body_size: Option<i64>,
    pub published_by: String,
}

/// One thing a restore writes.
#[derive(Debug, Clone)]
pub enum RestoreItem {
    Version(Box<RestoredVersion>),
    /// Written over an earlier row of the same id: a later bundle has the newer state.
    Mutation(Box<MutationRow>),
    Audit(AuditRow),
    State(StateLine),
    /// A leaf of the transparency log as the bundle's log has it, at its own index: the log
    /// is rebuilt leaf for leaf, not from the versions restored (issue 26). Versions left
    /// without a leaf get theirs when the restore finishes, in publication order.
    LogLeaf(LogEntry),
}

/// What one restore transaction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreCounts {
    pub versions: u64,
    pub mutations: u64,
    pub audit_records: u64,
    pub state_lines: u64,
    pub log_leaves: u64,
}

/// The items of one restore transaction, produced as they are written so that memory holds
/// one version at a time; an `Err` (a file that changed since it was verified) rolls the
/// transaction back.
pub type RestoreItems<'a> = dyn Iterator<Item = Result<RestoreItem, String>> + Send + 'a;

/// What a bundle carries besides versions, read for an export, and a restore written back.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Mutations submitted, decided, applied, published or completed at or after `since`
    /// (all with `None`), by id, as they stand now.
    async fn mutations_changed_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<MutationRow>, StorageError>;

    /// Audit records in `[since, until)`, by id.
    async fn audit_rows(
        &self,
        since: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<Vec<AuditRow>, StorageError>;

    /// The working state of every list, read consistently: heads, entries, retired ids and
    /// restore records.
    async fn state_lines(&self) -> Result<Vec<StateLine>, StorageError>;

    /// What the database holds that a restore would write over (`None`: nothing).
    async fn holds_data(&self) -> Result<Option<String>, StorageError>;

    /// Whether a restore began and did not finish.
    async fn restore_unfinished(&self) -> Result<bool, StorageError>;

    /// Writes `items` in one transaction and marks the restore unfinished until
    /// `finish_restore`. A version supersedes the one before it.
    async fn restore_items(
        &self,
        items: &mut RestoreItems<'_>,
    ) -> Result<RestoreCounts, StorageError>;

    /// Ends a restore in one transaction: versions without a leaf (from bundles that carry no
    /// log, or consumers' copies) get theirs after the log restored, in publication order;
    /// each record's list continues at its `next_volgnummer`, the records are stored, the
    /// restore is no longer unfinished. With `republish`, the node publishes each list past
    /// its gap before it serves.
    async fn finish_restore(
        &self,
        records: &[RestoreRecord],
        republish: bool,
    ) -> Result<(), StorageError>;

    /// The lists a restore asked to publish before serving, each with the Volgnummer the
    /// publication reaches.
    async fn lists_to_republish(&self) -> Result<Vec<(ListKind, i64)>, StorageError>;
}
