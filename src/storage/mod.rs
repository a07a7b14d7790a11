//! Persistence behind one small trait, with a SQLite implementation (the embedded default)
//! and a PostgreSQL one (several replicas). Both pass the same contract tests
//! (`tests/integration/storage_contract.rs`).

mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{AnyEntry, Lijst, ListEntries, ListKind, VersionRecord, Volgnummer};

pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

/// Errors at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Optimistic concurrency: the entry changed since the version the caller based its change on.
    #[error(
        "{list} entry \"{key}\" is at version {current}, the change was based on version {expected}"
    )]
    Conflict {
        list: ListKind,
        key: String,
        expected: i64,
        current: i64,
    },
    /// Publication: the list changed (or another replica published) while this version was
    /// being prepared. Nothing was stored; prepare again from a new snapshot.
    #[error("the {list} list changed while its new version was prepared")]
    Stale { list: ListKind },
    /// A mutation is not in the state the operation needs (e.g. approving a published one).
    #[error("mutation {id} is {status}")]
    MutationState { id: i64, status: String },
    #[error("there is no mutation {0}")]
    UnknownMutation(i64),
    /// Four-eyes rule (SPEC §1): the submitter never decides on their own mutation.
    #[error(
        "mutation {id} was submitted with this certificate; another beheer identity must decide on it"
    )]
    FourEyes { id: i64 },
    #[error("mutation {id} can only be withdrawn by the certificate that submitted it")]
    NotSubmitter { id: i64 },
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
    #[error("the database URL is not usable: {0}")]
    InvalidUrl(String),
    #[error(transparent)]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The working state of one list: its live entries and the version of every key ever stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingState {
    pub entries: ListEntries,
    /// Version per key, removed entries (tombstones) included.
    pub versions: BTreeMap<String, i64>,
}

impl WorkingState {
    /// The version a change to `key` must be based on: 0 for a key never stored.
    pub fn version_of(&self, key: &str) -> i64 {
        self.versions.get(key).copied().unwrap_or(0)
    }

    /// Keys that were stored once and have since been removed.
    pub fn removed_keys(&self) -> impl Iterator<Item = &str> {
        let live: std::collections::HashSet<&str> = self.entries.keys().into_iter().collect();
        self.versions
            .keys()
            .map(String::as_str)
            .filter(move |key| !live.contains(key))
    }
}

/// A change of one entry, based on the version the submitter saw.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryChange {
    list: ListKind,
    key: String,
    new: Option<AnyEntry>,
    base_version: i64,
}

impl EntryChange {
    /// Adds or replaces `entry`; `base_version` 0 means "there is no such entry yet".
    pub fn upsert(entry: AnyEntry, base_version: i64) -> Self {
        Self {
            list: entry.list(),
            key: entry.key().to_owned(),
            new: Some(entry),
            base_version,
        }
    }

    pub fn delete(list: ListKind, key: impl Into<String>, base_version: i64) -> Self {
        Self {
            list,
            key: key.into(),
            new: None,
            base_version,
        }
    }

    pub fn list(&self) -> ListKind {
        self.list
    }
    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn base_version(&self) -> i64 {
        self.base_version
    }
    pub fn operation(&self) -> Operation {
        match self.new {
            Some(_) => Operation::Upsert,
            None => Operation::Delete,
        }
    }
    /// The entry an upsert stores.
    pub fn entry(&self) -> Option<&AnyEntry> {
        self.new.as_ref()
    }
    /// The JSON body to store; `None` removes the entry.
    fn body(&self) -> Option<String> {
        self.new.as_ref().map(AnyEntry::to_json)
    }
}

/// Where a list's numbering stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHead {
    pub list: ListKind,
    /// The highest Volgnummer used so far, published or imported.
    pub last_volgnummer: Option<Volgnummer>,
    pub imported_volgnummer: Option<Volgnummer>,
    pub imported_at: Option<DateTime<Utc>>,
}

impl ListHead {
    /// The Volgnummer the next publication of this list gets.
    pub fn next_volgnummer(&self) -> Volgnummer {
        self.last_volgnummer
            .map_or(Volgnummer::FIRST, Volgnummer::next)
    }
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOutcome {
    pub entries: usize,
    /// Entries of the working state that the imported list no longer has.
    pub removed: usize,
    /// Entries added or changed.
    pub changed: usize,
    pub head: ListHead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    Allowed,
    Refused,
    Failed,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StorageError> {
        s.parse().map_err(StorageError::Corrupt)
    }
}

impl std::str::FromStr for AuditOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Allowed, Self::Refused, Self::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown audit outcome \"{s}\""))
    }
}

/// One line of the audit log: who did what, when, on whose behalf, with what outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
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

impl AuditRecord {
    /// The same record about `object`.
    pub fn about(&self, object: impl Into<String>) -> Self {
        Self {
            object: Some(object.into()),
            ..self.clone()
        }
    }
}

/// One list as a publication starts from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSnapshot {
    pub state: WorkingState,
    pub head: ListHead,
    /// The working state's revision: a publication is stored only if it is unchanged.
    pub revision: i64,
    /// The newest published version, if any.
    pub current: Option<VersionRecord>,
}

/// All four lists at one instant (one read transaction), since the integrity of one list
/// depends on the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub lists: BTreeMap<ListKind, ListSnapshot>,
    /// GegevensdienstIds ever removed from the GNL.
    pub retired_gegevensdienst_ids: std::collections::BTreeSet<String>,
}

impl Snapshot {
    pub fn list(&self, list: ListKind) -> &ListSnapshot {
        &self.lists[&list]
    }
}

/// A version ready to be stored: the document split into its own header and a body that
/// versions with the same entries share, already compressed.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// Its `body_sha256` names the shared body.
    pub record: VersionRecord,
    pub header: Vec<u8>,
    pub body_size: i64,
    /// gzip of the body.
    pub body_gzip: Vec<u8>,
    pub signature: Vec<u8>,
    pub published_by: String,
    /// The working-state revision the version was rendered from.
    pub based_on_revision: i64,
}

/// A stored version as it was published.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub record: VersionRecord,
    pub header: Vec<u8>,
    pub body_gzip: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A change request as submitted (SPEC §4).
#[derive(Debug, Clone)]
pub struct NewMutation {
    pub change: EntryChange,
    pub on_behalf_of: String,
    pub reference: String,
    pub urgent: bool,
    pub agreed_deadline: Option<DateTime<Utc>>,
    /// Not published before this instant.
    pub effective_from: Option<DateTime<Utc>>,
    /// SHA-256 fingerprint and subject of the submitter's certificate.
    pub submitted_by: String,
    pub submitted_by_subject: String,
    pub submitted_at: DateTime<Utc>,
}

/// The life cycle of a mutation: `submitted → approved → published`, or `rejected` or
/// `withdrawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MutationStatus {
    Submitted,
    Approved,
    Published,
    Rejected,
    Withdrawn,
}

impl MutationStatus {
    pub const ALL: [MutationStatus; 5] = [
        Self::Submitted,
        Self::Approved,
        Self::Published,
        Self::Rejected,
        Self::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Published => "published",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
}

impl std::fmt::Display for MutationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MutationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown mutation status \"{s}\""))
    }
}

/// Where a mutation stands, with everything it was submitted with.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MutationRecord {
    pub id: i64,
    pub list: ListKind,
    pub entry_key: String,
    pub operation: Operation,
    /// The entry as it will be stored (upsert only).
    pub entry: Option<serde_json::Value>,
    pub base_version: i64,
    pub on_behalf_of: String,
    pub reference: String,
    pub urgent: bool,
    pub agreed_deadline: Option<DateTime<Utc>>,
    pub effective_from: Option<DateTime<Utc>>,
    pub status: MutationStatus,
    /// SHA-256 fingerprint of the submitter's certificate, and its subject.
    pub submitted_by: String,
    pub submitted_by_subject: String,
    pub submitted_at: DateTime<Utc>,
    /// Who approved or rejected it (fingerprint, subject), and when.
    pub decided_by: Option<String>,
    pub decided_by_subject: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// When the change reached the working state.
    pub applied_at: Option<DateTime<Utc>>,
    /// The first version that contains the change, and when it was published.
    pub published_volgnummer: Option<i64>,
    pub published_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Upsert,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }
}

/// A decision on a submitted mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// By beheer, never the submitter; the change is applied unless `effective_from` lies ahead.
    Approve,
    /// By beheer, never the submitter; also cancels an approved change that is not yet applied.
    Reject { reason: String },
    /// By the submitter, while nobody has decided.
    Withdraw,
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject { .. } => "reject",
            Decision::Withdraw => "withdraw",
        }
    }
}

/// Who decides what on which mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationDecision {
    pub id: i64,
    pub decision: Decision,
    /// SHA-256 fingerprint and subject of the deciding certificate.
    pub by: String,
    pub by_subject: String,
    pub at: DateTime<Utc>,
}

impl MutationDecision {
    /// Whether the decision fits the mutation as it is now: the state machine and the
    /// four-eyes rule, checked inside the deciding transaction by both backends.
    fn check(&self, record: &MutationRecord) -> Result<(), StorageError> {
        let id = record.id;
        let wrong_state = || StorageError::MutationState {
            id,
            status: record.status.to_string(),
        };
        let undecided = record.status == MutationStatus::Submitted;
        match &self.decision {
            Decision::Approve | Decision::Reject { .. } if record.submitted_by == self.by => {
                Err(StorageError::FourEyes { id })
            }
            Decision::Approve if !undecided => Err(wrong_state()),
            Decision::Reject { .. }
                if !(undecided
                    || record.status == MutationStatus::Approved
                        && record.applied_at.is_none()) =>
            {
                Err(wrong_state())
            }
            Decision::Withdraw if record.submitted_by != self.by => {
                Err(StorageError::NotSubmitter { id })
            }
            Decision::Withdraw if !undecided => Err(wrong_state()),
            _ => Ok(()),
        }
    }

    /// Whether the approved change goes into the working state now.
    fn applies_now(&self, record: &MutationRecord) -> bool {
        self.decision == Decision::Approve
            && record.effective_from.is_none_or(|from| from <= self.at)
    }
}

/// Which mutations to list; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutationQuery {
    pub status: Option<MutationStatus>,
    pub list: Option<ListKind>,
    /// A submitter's certificate fingerprint or subject.
    pub submitter: Option<String>,
    pub submitted_before: Option<DateTime<Utc>>,
    pub submitted_after: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// Which audit records to read; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Certificate subject or fingerprint.
    pub actor: Option<String>,
    /// The action starts with this (e.g. `POST /mutations`).
    pub action: Option<String>,
    pub object: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub limit: u32,
}

impl AuditQuery {
    /// The newest `limit` records.
    pub fn newest(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }
}

/// The database operations the node needs. Every method is one transaction.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Applies the backend's migrations (idempotent).
    async fn migrate(&self) -> Result<(), StorageError>;

    async fn working_state(&self, list: ListKind) -> Result<WorkingState, StorageError>;

    /// Applies one change if the entry is still at `change.base_version`; returns the new version.
    async fn apply_change(
        &self,
        change: &EntryChange,
        at: DateTime<Utc>,
    ) -> Result<i64, StorageError>;

    /// Replaces a list's working state with an imported list and continues its numbering from
    /// the imported Volgnummer (never going back). Audited in the same transaction.
    async fn import_list(
        &self,
        list: &Lijst,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<ImportOutcome, StorageError>;

    async fn list_head(&self, list: ListKind) -> Result<ListHead, StorageError>;

    /// Each list's working-state revision: it grows with every change.
    async fn revisions(&self) -> Result<BTreeMap<ListKind, i64>, StorageError>;

    /// All four lists, their heads and current versions, consistently.
    async fn snapshot(&self) -> Result<Snapshot, StorageError>;

    /// Stores a new version as the list's newest, and marks the previous one superseded, in
    /// one transaction serialised with every other publication of the list. Refuses with
    /// `Stale` unless the version follows the list's last Volgnummer and the working state is
    /// still at `based_on_revision`.
    async fn store_version(&self, version: &NewVersion) -> Result<(), StorageError>;

    /// The newest published version of a list.
    async fn current_version(&self, list: ListKind) -> Result<Option<VersionRecord>, StorageError>;

    /// Every version of a list, oldest first.
    async fn versions(&self, list: ListKind) -> Result<Vec<VersionRecord>, StorageError>;

    async fn version(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<Option<StoredVersion>, StorageError>;

    /// The versions that could be honoured at `at`: valid then, and not out of grace.
    async fn versions_honoured_at(
        &self,
        list: ListKind,
        at: DateTime<Utc>,
    ) -> Result<Vec<VersionRecord>, StorageError>;

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError>;

    /// Stores a submitted mutation and its audit record (whose object becomes
    /// `mutations/{id}`) in one transaction. Refused with `Conflict` when the entry is no
    /// longer at the mutation's base version, and with `OpenMutation` while another mutation
    /// of the same entry waits for a decision or its `effective_from`.
    async fn submit_mutation(
        &self,
        mutation: &NewMutation,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError>;

    /// Approves, rejects or withdraws a mutation, with its audit record, in one transaction.
    /// An approval applies the change to the working state at once unless `effective_from`
    /// lies ahead; a stale base version is a `Conflict` and nothing changes.
    async fn decide_mutation(
        &self,
        decision: &MutationDecision,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError>;

    /// Applies approved mutations whose `effective_from` has come; one that no longer fits
    /// (stale base version) is rejected with the reason. Returns what it did.
    async fn apply_due_mutations(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError>;

    /// Lists with applied, approved changes that no version contains yet, each with the
    /// earliest instant such a change was applied.
    async fn unpublished_changes(&self) -> Result<Vec<(ListKind, DateTime<Utc>)>, StorageError>;

    /// Mutations matching `query`, newest first.
    async fn mutations(&self, query: &MutationQuery) -> Result<Vec<MutationRecord>, StorageError>;

    async fn mutation(&self, id: i64) -> Result<Option<MutationRecord>, StorageError>;

    /// Audit records in `[since, until)`, newest first, at most `limit`.
    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError>;
}

/// Opens the database named by `url` (`sqlite://path` or `postgres://...`).
pub async fn connect(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStorage::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStorage::connect(url).await?))
    } else {
        Err(StorageError::InvalidUrl(
            "expected sqlite://PATH or postgres://...".into(),
        ))
    }
}

/// Rebuilds a list's entries from stored rows (key, body or tombstone, version).
fn working_state_from_rows(
    list: ListKind,
    rows: Vec<(String, Option<String>, i64)>,
) -> Result<WorkingState, StorageError> {
    let versions = rows.iter().map(|(k, _, v)| (k.clone(), *v)).collect();
    let entries =
        ListEntries::from_json_rows(list, rows.iter().filter_map(|(_, b, _)| b.as_deref()))
            .map_err(|e| StorageError::Corrupt(format!("{list} entries: {e}")))?;
    Ok(WorkingState { entries, versions })
}

/// The keys of the live entries that an imported list no longer has.
fn removed_by_import(live: Vec<String>, imported: &[(String, String)]) -> Vec<String> {
    let keep: std::collections::HashSet<&str> = imported.iter().map(|(k, _)| k.as_str()).collect();
    live.into_iter()
        .filter(|k| !keep.contains(k.as_str()))
        .collect()
}

/// The typed parts of a stored mutation row (shared by both backends).
fn mutation_kinds(
    list: &str,
    operation: &str,
    status: &str,
    body: Option<&str>,
) -> Result<
    (
        ListKind,
        Operation,
        MutationStatus,
        Option<serde_json::Value>,
    ),
    StorageError,
> {
    let list: ListKind = list
        .parse()
        .map_err(|e: crate::domain::UnknownList| StorageError::Corrupt(e.to_string()))?;
    let operation = match operation {
        "upsert" => Operation::Upsert,
        "delete" => Operation::Delete,
        other => {
            return Err(StorageError::Corrupt(format!(
                "unknown mutation operation \"{other}\""
            )));
        }
    };
    let status = status.parse().map_err(StorageError::Corrupt)?;
    let entry = body
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StorageError::Corrupt(format!("mutation body: {e}")))?;
    Ok((list, operation, status, entry))
}

/// Rows keyed by a stored list name, with the name parsed.
fn by_list<T>(
    rows: impl IntoIterator<Item = (String, T)>,
) -> Result<Vec<(ListKind, T)>, StorageError> {
    rows.into_iter()
        .map(|(list, value)| {
            list.parse()
                .map(|list| (list, value))
                .map_err(|e: crate::domain::UnknownList| StorageError::Corrupt(e.to_string()))
        })
        .collect()
}

fn conflict(list: ListKind, key: &str, expected: i64, current: Option<i64>) -> StorageError {
    StorageError::Conflict {
        list,
        key: key.to_owned(),
        expected,
        current: current.unwrap_or(0),
    }
}

fn volgnummer_from_db(list: ListKind, value: i64) -> Result<Option<Volgnummer>, StorageError> {
    match value {
        0 => Ok(None),
        n => Volgnummer::new(n)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{list} head: {e}"))),
    }
}

/// Builds a version record from database values (shared by both backends).
#[allow(clippy::too_many_arguments)]
fn version_record(
    list: &str,
    volgnummer: i64,
    tijdstempel: crate::domain::Tijdstempel,
    [valid_from, expires_at]: [DateTime<Utc>; 2],
    grace_seconds: i64,
    [superseded_at, grace_until]: [Option<DateTime<Utc>>; 2],
    sha256: String,
    previous_sha256: Option<String>,
    heartbeat: bool,
    size_bytes: i64,
    body_sha256: String,
) -> Result<VersionRecord, StorageError> {
    let list: ListKind = list
        .parse()
        .map_err(|e: crate::domain::UnknownList| StorageError::Corrupt(e.to_string()))?;
    Ok(VersionRecord {
        list,
        volgnummer: Volgnummer::new(volgnummer)
            .map_err(|e| StorageError::Corrupt(format!("{list} version: {e}")))?,
        tijdstempel,
        valid_from,
        expires_at,
        grace_seconds,
        superseded_at,
        grace_until,
        sha256,
        previous_sha256,
        heartbeat,
        size_bytes,
        body_sha256,
    })
}
