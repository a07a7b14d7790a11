//! Persistence behind one small trait per concern — `ListStore` (the working state),
//! `VersionStore`, `MutationStore`, `AuditStore`, `SlaStore`, `RetentionStore`,
//! `RecoveryStore` (what an archive bundle carries and a restore writes back),
//! `SecretStore` (secrets the replicas share), `LeaseStore` (who runs singleton work) — and
//! `Storage`, all of them: a service takes the narrowest role it needs (the archive check
//! reads versions, the audit log appends, the state cache reads the working state).
//! The transaction logic is written once (`sql/`, one file per concern) over two backends
//! that supply only connections, locking and encodings: SQLite (the embedded default) and
//! PostgreSQL (several replicas). Both pass the same contract tests
//! (`tests/integration/storage_contract.rs`).

mod connection;
mod error;
mod postgres;
mod recovery;
mod sql;
mod sqlite;
mod state_cache;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    AuditOutcome, AuditRecord, CheckError, EntryChange, Lijst, ListHead, ListKind, ListStanding,
    LogEntry, MutationDecision, MutationRecord, MutationSla, MutationStatus, NewMutation,
    Notification, NotificationChannel, SlaOutcome, Snapshot, VersionRecord, Volgnummer,
    WorkingState,
};
use postgres::PostgresBackend;
use sql::SqlStorage;
use sqlite::SqliteBackend;

pub use error::StorageError;
pub use recovery::{
    AuditRow, EntryRow, HeadRow, MutationRow, RecoveryStore, RestoreCounts, RestoreItem,
    RestoreItems, RestoreRecord, RestoredVersion, RetiredRow, StateLine,
};
pub use state_cache::{ChangeTurn, StateCache};

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

/// The rules an approval checks again inside its deciding transaction, against the working
/// state that transaction sees, with every other writer of the working state held off (on
/// PostgreSQL: every list head locked, so replicas take turns; on SQLite: the one writer).
pub struct Recheck<'a> {
    /// A snapshot to use when its revisions are still the current ones, sparing a read of
    /// every list.
    pub cached: Option<Arc<Snapshot>>,
    pub rules: &'a (dyn Fn(&MutationRecord, &Snapshot) -> Result<(), CheckError> + Send + Sync),
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

/// Which open mutations (submitted, or approved and not yet published) the work queue
/// shows: every filter is optional, the order is by deadline (the most urgent first, those
/// without a deadline yet last), then by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenQueueQuery {
    pub list: Option<ListKind>,
    /// `Submitted` or `Approved`; any other status matches nothing.
    pub status: Option<MutationStatus>,
    /// Part of the deelnemer's name, in any case.
    pub on_behalf_of: Option<String>,
    /// Part of the submitter's certificate subject, in any case.
    pub submitter_subject: Option<String>,
    pub submitted_before: Option<DateTime<Utc>>,
    /// Skips this many of the matching mutations (paging).
    pub offset: u32,
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

/// Completed mutations of one list, urgency and outcome, since the beginning: the counts
/// behind the SLA counter and histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaTotal {
    pub list: ListKind,
    pub urgent: bool,
    pub outcome: SlaOutcome,
    pub count: i64,
    /// The sum of their processing werkdagen (0 for excluded ones).
    pub werkdagen_sum: f64,
    /// How many took at most each bound asked for, in werkdagen (cumulative, as Prometheus
    /// buckets are).
    pub at_most: Vec<i64>,
}

/// An open mutation as the SLA sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenDeadline {
    pub id: i64,
    pub list: ListKind,
    pub status: MutationStatus,
    pub submitted_at: DateTime<Utc>,
    pub effective_from: Option<DateTime<Utc>>,
    /// `None` only until the node stores the deadline of a mutation from before the SLA.
    pub deadline: Option<DateTime<Utc>>,
}

/// The SLA's storage (issue 13): deadlines, outcomes, and notifications of an expected
/// breach. Every method is one transaction.
#[async_trait]
pub trait SlaStore: Send + Sync {
    /// Mutations whose SLA columns the node has yet to compute: no deadline (stored before
    /// the SLA was), or completed without an outcome. At most `limit` with ids after
    /// `after_id`, in id order.
    async fn sla_backlog(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<MutationRecord>, StorageError>;

    /// Stores a mutation's computed SLA columns where they are still empty, so replicas that
    /// compute the same mutation do not overwrite each other.
    async fn record_sla(&self, id: i64, sla: &MutationSla) -> Result<(), StorageError>;

    /// Mutations waiting for a decision or for publication, oldest first: only what the SLA
    /// needs of them (this runs at every scrape, with thousands open under load). With
    /// `before`, only those with a deadline before it.
    async fn open_deadlines(
        &self,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<OpenDeadline>, StorageError>;

    /// Mutations whose SLA outcome is stored and that completed in `[since, until)`, in the
    /// order they completed.
    async fn completed_mutations(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError>;

    /// Every completed mutation, counted by list, urgency and outcome, with how many took at
    /// most each of `bounds` werkdagen.
    async fn sla_totals(&self, bounds: &[f64]) -> Result<Vec<SlaTotal>, StorageError>;

    /// Queues a notification on each of `channels` unless the mutation has them already; the
    /// `Log` one is stored as delivered. Returns whether this call queued them.
    async fn queue_notifications(
        &self,
        prototype: &Notification,
        channels: &[NotificationChannel],
    ) -> Result<bool, StorageError>;

    /// Claims up to `limit` undelivered notifications that are due at `at` and have had fewer
    /// than `max_attempts`: each one's attempt is counted and it is not due again before
    /// `lease_until`, so another replica does not deliver it meanwhile.
    async fn claim_notifications(
        &self,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StorageError>;

    /// Records how a claimed delivery went: delivered at `at`, or failed with `error` and due
    /// again at `retry_at`.
    async fn finish_notification(
        &self,
        claimed: &Notification,
        at: DateTime<Utc>,
        result: Result<(), (&str, DateTime<Utc>)>,
    ) -> Result<(), StorageError>;

    /// A mutation's notifications, by channel.
    async fn notifications(&self, mutation_id: i64) -> Result<Vec<Notification>, StorageError>;
}

/// What a retention run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionOutcome {
    pub audit_records: u64,
    pub versions: u64,
    pub bodies: u64,
}

/// Retention (seed 003 rules 20 and 21).
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// In one transaction, serialised with publications and with other replicas' runs:
    /// destroys the audit records from before `audit_before`; purges the bytes of the
    /// superseded versions whose validity ended before `versions_before` (their records stay)
    /// and the bodies no unpurged version uses any more; then stores `audit(outcome)`.
    async fn run_retention(
        &self,
        audit_before: DateTime<Utc>,
        versions_before: DateTime<Utc>,
        at: DateTime<Utc>,
        audit: &(dyn Fn(RetentionOutcome) -> AuditRecord + Send + Sync),
    ) -> Result<RetentionOutcome, StorageError>;
}

/// The working state of the four lists: entries with their versions, the list heads, an
/// import, a consistent snapshot. Every method is one transaction.
#[async_trait]
pub trait ListStore: Send + Sync {
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
    async fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.snapshot_reusing(None).await
    }

    /// The same, sharing the working state of each list whose revision is still the one in
    /// `known` instead of reading it again (`StateCache`).
    async fn snapshot_reusing(&self, known: Option<&Snapshot>) -> Result<Snapshot, StorageError>;

    /// Where one list stands, without reading its working state.
    async fn list_standing(&self, list: ListKind) -> Result<ListStanding, StorageError>;
}

/// Published versions: stored once, each the newest of its list, read back as published.
/// Every method is one transaction.
#[async_trait]
pub trait VersionStore: Send + Sync {
    /// Stores new versions, each as its list's newest, and marks the versions they follow
    /// superseded, in one transaction serialised with every other publication of those
    /// lists. Refuses with `StaleList` unless each version follows its list's last Volgnummer
    /// and the list's working state is still at `based_on_revision`.
    async fn store_versions(&self, versions: &[NewVersion]) -> Result<(), StorageError>;

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

    /// Every restore record, oldest first: the gaps a restore left in the lists' chains.
    async fn restores(&self) -> Result<Vec<RestoreRecord>, StorageError>;
}

/// Mutations: submitted, decided, applied when due, and read back (all, one, or the open
/// queue). Every method is one transaction.
#[async_trait]
pub trait MutationStore: Send + Sync {
    /// Stores a submitted mutation and its audit record (whose object becomes
    /// `mutations/{id}`) in one transaction. Refused with `StaleEntry` when the entry is no
    /// longer at the mutation's base version, and with `OpenMutation` while another mutation
    /// of the same entry waits for a decision or its `effective_from`.
    async fn submit_mutation(
        &self,
        mutation: &NewMutation,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError>;

    /// Approves, rejects or withdraws a mutation, with its audit record, in one transaction.
    /// An approval runs `recheck` in that transaction (refused: `Check`), then applies the
    /// change to the working state at once unless `effective_from` lies ahead; a stale base
    /// version is a `StaleEntry` and nothing changes.
    async fn decide_mutation(
        &self,
        decision: &MutationDecision,
        audit: &AuditRecord,
        recheck: Option<&Recheck<'_>>,
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

    /// Open mutations matching `query`, the most urgent first (see `OpenQueueQuery`).
    async fn open_mutations(
        &self,
        query: &OpenQueueQuery,
    ) -> Result<Vec<MutationRecord>, StorageError>;

    async fn mutation(&self, id: i64) -> Result<Option<MutationRecord>, StorageError>;
}

/// The append-only audit log. Every method is one transaction.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError>;

    /// Audit records in `[since, until)`, newest first, at most `limit`.
    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError>;
}

/// Secrets every replica shares (issue 24).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret called `name`: the one stored, or else `candidate`, stored now. Replicas
    /// racing to make it all get the one that was stored first.
    async fn shared_secret(
        &self,
        name: &str,
        candidate: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Vec<u8>, StorageError>;
}

/// A lease on singleton work as the database keeps it (issue 24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: String,
    /// Grows by one each time the lease changes hands.
    pub fence: i64,
    /// By the database's clock; negative once expired.
    pub expires_in: chrono::Duration,
}

/// Leases on singleton work, judged by the database's clock (never a replica's).
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `holder` until `ttl` from now, when it is free or expired,
    /// or extends it when `holder` holds it already. Returns the lease's fence when `holder`
    /// holds it afterwards: a holder that gets a fence other than the one it held lost the
    /// lease in between. Replicas racing for a free lease: one gets it.
    async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<i64>, StorageError>;
    /// Ends the lease now, when `holder` still holds it with `fence`, so another replica
    /// need not wait for it to expire.
    async fn release_lease(&self, name: &str, holder: &str, fence: i64)
    -> Result<(), StorageError>;
    /// Every lease, by name.
    async fn leases(&self) -> Result<Vec<LeaseRecord>, StorageError>;
}

/// The transparency log's leaves (issue 26), appended by `store_versions` and a restore.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Up to `limit` leaves from number `from` on, in order.
    async fn log_entries(&self, from: u64, limit: u64) -> Result<Vec<LogEntry>, StorageError>;

    /// The largest tree any node checked: its size and root (base64).
    async fn log_head(&self) -> Result<(u64, String), StorageError>;

    /// Records a larger checked tree (a smaller one changes nothing).
    async fn raise_log_head(&self, size: u64, root: &str) -> Result<(), StorageError>;
}

/// Every role together: what a node's database is. Each service takes the narrowest role it
/// needs where it can (`SlaStore`, `RetentionStore`, …); the composition root
/// (`crate::services`) holds the whole.
#[async_trait]
pub trait Storage:
    ListStore
    + VersionStore
    + MutationStore
    + AuditStore
    + SlaStore
    + RetentionStore
    + RecoveryStore
    + SecretStore
    + LeaseStore
    + LogStore
    + Send
    + Sync
{
    /// Applies the backend's migrations (idempotent).
    async fn migrate(&self) -> Result<(), StorageError>;

    /// Writes a consistent copy of the whole database to `out` while the node keeps serving
    /// and writing, checked before it replaces `out` atomically; returns its size. SQLite
    /// only: PostgreSQL is backed up with its own tools (README, "Disaster recovery").
    async fn backup(&self, out: &std::path::Path) -> Result<u64, StorageError>;
}

/// Opens the database named by `url` (`sqlite://path` or `postgres://...`).
pub async fn connect(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqlStorage(SqliteBackend::connect(url).await?)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStorage(PostgresBackend::connect(url).await?)))
    } else {
        Err(StorageError::InvalidUrl(
            "expected sqlite://PATH or postgres://...".into(),
        ))
    }
}
