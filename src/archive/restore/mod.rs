//! Disaster recovery (issue 23): a node's database rebuilt from its archive bundles and from
//! the copies of the newest versions that every consumer node holds.
//!
//! `Restorer::restore` first decides everything (`plan.rs`): every bundle verified in chain
//! order by the same code as `archive verify` — nothing is written when any check fails —
//! and every consumer copy checked against the CA and the version it follows. Then it writes
//! (`items.rs`), one transaction per bundle, each file checked against its digest again as
//! it is read, one version in memory at a time, into a database that must hold nothing; a
//! database left half-restored is marked so, and a node refuses to start on it.
//!
//! The transparency log is rebuilt leaf for leaf from the bundles' logs (each holds every
//! leaf from the first, so the oldest bundle kept is enough), so the restored node signs
//! checkpoints of the very tree consumers and witnesses saw; versions no bundle's log holds
//! (consumers' copies, bundles of format 1 and 2) get their leaves after it, in publication
//! order.
//!
//! No rollback, ever: versions may have been published after the last one recovered, and
//! some consumer may hold them. So each list continues `margin` Volgnummers further on,
//! naming the last recovered version as predecessor, and a restore record states exactly
//! that gap — stored, exported in every later bundle's working state, and the only gap the
//! chain checks accept (`chain.rs`). A consumer (`stelselnode verify --state`) never sees a
//! Volgnummer it holds again, nor one below it, as long as fewer than `margin` versions were
//! lost; the node publishes every list past the gap at its first start after the restore,
//! before it serves — unless the operator knew the versions recovered were the newest any
//! consumer held (`republish: false`): then they are served byte for byte as before.

mod items;
mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use self::items::{LastBodies, SoundFiles, bundle_items};
use self::plan::{Plan, check_copies, verify_bundles};
use super::BundleTrust;
use crate::domain::{ListKind, MutationStatus, Volgnummer};
use crate::import::import_document;
use crate::publication::assemble;
use crate::storage::{AuditQuery, RestoreItem, RestoreRecord, StateLine, Storage, StorageError};

pub use plan::ConsumerCopy;

/// The smallest margin a restore may leave: a day of publications of one list.
pub const MIN_MARGIN: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the database is not empty (it holds {0}); restore into an empty database")]
    NotEmpty(String),
    #[error("the database holds a restore that did not finish; start again with an empty one")]
    Unfinished,
    #[error("nothing was written: {}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("the margin must be at least {MIN_MARGIN}")]
    Margin,
    /// A version written cannot become the working state: the restore did not finish.
    #[error("the restore did not finish: {0}")]
    Unusable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What to restore from.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// Bundle directories, in any order: every one from the first export on (or from the
    /// oldest still kept) to the newest.
    pub bundles: Vec<PathBuf>,
    /// Copies of versions published after the last bundle, from consumer nodes.
    pub copies: Vec<ConsumerCopy>,
    /// How many Volgnummers each list skips after the last one recovered.
    pub margin: i64,
    /// Publish every list past the gap before the node serves (the default). Without it
    /// the versions recovered are served as they are, byte for byte, until the next
    /// publication: only right when they are the newest any consumer holds.
    pub republish: bool,
}

/// Where a list stands after the restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRestored {
    /// The last version recovered (0: none) …
    pub last_recovered: i64,
    /// … of which this many came from consumer copies …
    pub adopted: usize,
    /// … and the Volgnummer the node publishes next.
    pub next_volgnummer: i64,
    /// The working state is the content of the last version recovered: it was newer than
    /// the working state in the bundles (or the backup), or the bundles had none (format 1).
    pub working_state_from_version: bool,
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    pub bundles: usize,
    pub lists: BTreeMap<ListKind, ListRestored>,
    pub versions: u64,
    /// Leaves of the transparency log restored as the bundles' logs held them: the tree
    /// consumers saw, up to this size (versions after it get their leaves after them).
    pub log_leaves: u64,
    pub mutations: BTreeMap<MutationStatus, u64>,
    pub audit_records: u64,
    /// The newest bundle covers up to here: audit records and mutations after this instant
    /// were not in any bundle (mutations changed before the export ran may be).
    pub recovered_up_to: DateTime<Utc>,
    /// Consumer copies of versions the bundles held already.
    pub copies_already_held: usize,
    /// The oldest bundle given covers from here, following bundles no longer kept: versions,
    /// mutations and audit records before it were not restored (`None`: from the first).
    pub recovered_from: Option<DateTime<Utc>>,
}

pub struct Restorer {
    pub storage: Arc<dyn Storage>,
    pub trust: BundleTrust,
}

impl Restorer {
    /// Restores `request` into the (empty) database; `progress(done, total)` after each bundle.
    pub async fn restore(
        &self,
        request: &RestoreRequest,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<RestoreReport, RestoreError> {
        if request.margin < MIN_MARGIN {
            return Err(RestoreError::Margin);
        }
        if self.storage.restore_unfinished().await? {
            return Err(RestoreError::Unfinished);
        }
        if let Some(held) = self.storage.holds_data().await? {
            return Err(RestoreError::NotEmpty(held));
        }
        let plan = self.plan(request, now)?;
        self.write(plan, request, now, progress).await
    }

    /// Verifies everything before anything is written.
    fn plan(&self, request: &RestoreRequest, now: DateTime<Utc>) -> Result<Plan, RestoreError> {
        let (bundles, state) =
            verify_bundles(&request.bundles, &self.trust).map_err(RestoreError::Refused)?;
        let mut last = state.map(|s| s.lists).unwrap_or_default();
        let copies = check_copies(&request.copies, &self.trust, now, &mut last)
            .map_err(RestoreError::Refused)?;
        Ok(Plan {
            bundles,
            copies,
            last,
        })
    }

    async fn write(
        &self,
        mut plan: Plan,
        request: &RestoreRequest,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<RestoreReport, RestoreError> {
        let mut report = RestoreReport {
            bundles: plan.bundles.len(),
            lists: BTreeMap::new(),
            versions: 0,
            log_leaves: 0,
            mutations: BTreeMap::new(),
            audit_records: 0,
            recovered_up_to: plan
                .bundles
                .last()
                .map_or(DateTime::UNIX_EPOCH, |b| b.manifest.covers_up_to),
            copies_already_held: plan.copies.already_held,
            recovered_from: plan.bundles.first().and_then(|b| b.manifest.covers_from),
        };
        let mut last_bodies = LastBodies::new();
        let mut mutations: BTreeMap<i64, MutationStatus> = BTreeMap::new();
        // The numbering the working state had reached when the newest bundle was exported.
        let mut heads: BTreeMap<ListKind, i64> = BTreeMap::new();
        let total = plan.bundles.len();
        let mut logged = 0;
        for (i, bundle) in plan.bundles.iter().enumerate() {
            let files = SoundFiles::of(bundle);
            let newest = i + 1 == total;
            let mut items =
                bundle_items(&files, newest, &mut last_bodies, &mut logged).inspect(|item| {
                    match item {
                        Ok(RestoreItem::Mutation(m)) => {
                            mutations.insert(m.id, m.status);
                        }
                        Ok(RestoreItem::State(StateLine::Head(h))) => {
                            heads.insert(h.list, h.last_volgnummer);
                        }
                        _ => {}
                    }
                });
            let counts = self.storage.restore_items(&mut items).await?;
            report.versions += counts.versions;
            report.audit_records += counts.audit_records;
            report.log_leaves += counts.log_leaves;
            progress(i + 1, total);
        }
        let end = End {
            copies: std::mem::take(&mut plan.copies.adopted),
            last: plan.last,
            heads,
            last_bodies,
            recovered_up_to: report.recovered_up_to,
            margin: request.margin,
            republish: request.republish,
        };
        let (adopted, lists) = self.finish(end, now).await?;
        report.versions += adopted;
        report.lists = lists;
        for status in mutations.into_values() {
            *report.mutations.entry(status).or_default() += 1;
        }
        Ok(report)
    }

    /// After restoring a backup of the database (`stelselnode backup`, or PostgreSQL's): adds
    /// consumers' copies (`request.copies`; its `bundles` are not used) of versions published
    /// after it, and continues each list `margin` past the last version recovered — a backup
    /// misses what was published after it just as bundles do.
    pub async fn adopt(
        &self,
        request: &RestoreRequest,
        now: DateTime<Utc>,
    ) -> Result<RestoreReport, RestoreError> {
        if request.margin < MIN_MARGIN {
            return Err(RestoreError::Margin);
        }
        if self.storage.restore_unfinished().await? {
            return Err(RestoreError::Unfinished);
        }
        let mut last = BTreeMap::new();
        let mut last_bodies = LastBodies::new();
        let mut heads = BTreeMap::new();
        let mut newest = DateTime::UNIX_EPOCH;
        for list in ListKind::ALL {
            if let Some(current) = self.storage.current_version(list).await? {
                newest = newest.max(current.tijdstempel.instant());
                last.insert(list, (current.volgnummer.get(), current.sha256));
                last_bodies.insert(list, current.body_sha256);
            }
            let head = self.storage.list_head(list).await?;
            heads.insert(list, head.last_volgnummer.map_or(0, |n| n.get()));
        }
        let audited = self.storage.audit_records(&AuditQuery::newest(1)).await?;
        let copies = check_copies(&request.copies, &self.trust, now, &mut last)
            .map_err(RestoreError::Refused)?;
        let end = End {
            copies: copies.adopted,
            last,
            heads,
            last_bodies,
            recovered_up_to: audited.first().map_or(newest, |a| a.at.max(newest)),
            margin: request.margin,
            republish: request.republish,
        };
        let recovered_up_to = end.recovered_up_to;
        let (versions, lists) = self.finish(end, now).await?;
        Ok(RestoreReport {
            bundles: 0,
            lists,
            versions,
            log_leaves: 0,
            mutations: BTreeMap::new(),
            audit_records: 0,
            recovered_up_to,
            copies_already_held: copies.already_held,
            recovered_from: None,
        })
    }

    /// Writes the consumer copies after what the database holds, then ends the restore: each
    /// list continues `margin` past both its last version and the numbering its working
    /// state had reached. Returns how many copies were written, and where each list stands.
    async fn finish(
        &self,
        end: End,
        now: DateTime<Utc>,
    ) -> Result<(u64, BTreeMap<ListKind, ListRestored>), RestoreError> {
        let End {
            copies,
            last,
            heads,
            mut last_bodies,
            recovered_up_to,
            margin,
            republish,
        } = end;
        let mut items = Vec::new();
        let mut adopted = BTreeMap::new();
        for (list, copies) in copies {
            adopted.insert(list, copies.len());
            for copy in copies {
                let version = copy.stored(last_bodies.get(&list).map(String::as_str));
                last_bodies.insert(list, version.version.record.body_sha256.clone());
                items.push(Ok(RestoreItem::Version(Box::new(version))));
            }
        }
        let written = self.storage.restore_items(&mut items.into_iter()).await?;
        let mut records = Vec::new();
        let mut lists = BTreeMap::new();
        for list in ListKind::ALL {
            let (last_n, last_sha) = last
                .get(&list)
                .map_or((0, None), |(n, sha)| (*n, Some(sha.clone())));
            // A version newer than the working state recovered (a consumer's copy of what was
            // published after the export) holds changes that state lacks: publishing that
            // state would take them back. The published content is then the working state.
            let head = heads.get(&list).copied();
            let from_version = last_n > 0 && head.is_none_or(|h| last_n > h);
            if from_version {
                self.working_state_from(list, last_n, now).await?;
            }
            let numbered = head.unwrap_or(0).max(last_n);
            let next_volgnummer = numbered + margin + 1;
            records.push(RestoreRecord {
                list,
                at: now,
                after_volgnummer: last_n,
                after_sha256: last_sha,
                next_volgnummer,
                recovered_up_to,
            });
            lists.insert(
                list,
                ListRestored {
                    last_recovered: last_n,
                    adopted: adopted.get(&list).copied().unwrap_or(0),
                    next_volgnummer,
                    working_state_from_version: from_version,
                },
            );
        }
        self.storage.finish_restore(&records, republish).await?;
        Ok((written.versions, lists))
    }

    /// Makes the content of version `n` of `list` its working state, as an import does
    /// (audited; entries that changed get a new version, so a mutation based on the older
    /// state is stale).
    async fn working_state_from(
        &self,
        list: ListKind,
        n: i64,
        now: DateTime<Utc>,
    ) -> Result<(), RestoreError> {
        let unusable = |why: String| RestoreError::Unusable(format!("{list} version {n}: {why}"));
        let volgnummer = Volgnummer::new(n).map_err(|e| unusable(e.to_string()))?;
        let stored = self
            .storage
            .version(list, volgnummer)
            .await?
            .ok_or_else(|| unusable("not stored".into()))?;
        let bytes = assemble(&stored).map_err(|e| unusable(e.to_string()))?;
        import_document(
            self.storage.as_ref(),
            list,
            &bytes,
            "cli:archive restore",
            now,
        )
        .await
        .map_err(|e| unusable(e.to_string()))?;
        Ok(())
    }
}

/// What ends a restore: the copies to add and where each list stands.
struct End {
    copies: BTreeMap<ListKind, Vec<plan::AdoptedCopy>>,
    last: BTreeMap<ListKind, (i64, String)>,
    heads: BTreeMap<ListKind, i64>,
    last_bodies: LastBodies,
    recovered_up_to: DateTime<Utc>,
    margin: i64,
    republish: bool,
}
