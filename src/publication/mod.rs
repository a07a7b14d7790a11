//! Publication: from the working state to an immutable, signed, archived version (SPEC §5).
//!
//! A publication reads one consistent snapshot, plans which lists must go together so that
//! the current published versions stay consistent (`integrity::plan_publication`: a list is
//! checked against the others' published versions, and takes along a list whose unpublished
//! change a reference needs), checks the rendered bytes, signs them and stores every version
//! of the plan in one transaction that is refused if any of those lists moved on meanwhile;
//! it then simply starts again from a new snapshot. So publications are serialised by the
//! database, across replicas, without holding a lock while rendering; within one process
//! they take turns.
//!
//! `mod.rs` is the service and its I/O; `prepare.rs` the pure plan → render → check → sign;
//! `preview.rs` the same decision without signing or storing (the Lijsten page);
//! `reading.rs` reads what was published and warms up after a start; `heartbeat.rs` renews
//! validity; `renewal.rs` the next version of a list unchanged since
//! its current one, from the stored body; `honoured.rs` answers the honoured query; `contents.rs`
//! caches published entries; `document.rs` the stored form (header + shared gzip body).

mod contents;
mod document;
mod heartbeat;
mod honoured;
mod prepare;
mod preview;
mod reading;
mod renewal;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use chrono::Duration;

use self::contents::Contents;
use self::prepare::{Prepared, Publication, prepare_plan};
use self::renewal::prepare_renewal;
use crate::background;
use crate::clock::Clock;
use crate::config::PublicationConfig;
use crate::domain::Snapshot;
use crate::domain::{ListEntries, ListKind, ListStanding, VersionRecord, Violations};
use crate::signing::{SigningError, SigningKey};
use crate::storage::{NewVersion, StateCache, Storage, StorageError};
use crate::xml::CheckedEntries;

pub use document::{CorruptArchive, assemble, gzip, gzip_joined, header_len};
pub use honoured::Honoured;
pub use preview::{Preview, Verdict};
pub use reading::VersionContent;

/// How often a publication is tried when other replicas or writers keep moving the list on.
/// Within one process publications of a list queue on a lock, so only other replicas and
/// working-state changes make an attempt stale.
const MAX_ATTEMPTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The working state breaks an integrity rule: nothing was published.
    #[error("the {list} list cannot be published: {violations}")]
    Refused {
        list: ListKind,
        violations: Violations,
    },
    /// The rendered bytes failed their own check: a bug in rendering, never published.
    #[error("the rendered {list} list failed its facet check: {violations}")]
    RenderCheck {
        list: ListKind,
        violations: Violations,
    },
    #[error("the {list} list kept changing; it was not published after {MAX_ATTEMPTS} attempts")]
    Contention { list: ListKind },
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Archive(#[from] CorruptArchive),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Timing rules of publication, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_validity: Duration,
    pub grace_period: Duration,
    pub refresh_before: Duration,
    pub mass_change_threshold_percent: u8,
}

impl From<&PublicationConfig> for Settings {
    fn from(c: &PublicationConfig) -> Self {
        let seconds = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        Self {
            max_validity: seconds(c.max_validity_seconds),
            grace_period: seconds(c.grace_period_seconds),
            refresh_before: seconds(c.refresh_before_seconds),
            mass_change_threshold_percent: c.mass_change_threshold_percent,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Rule 7: allow removing more than the threshold share of the list's entries.
    pub confirm_mass_change: bool,
    /// Who or what publishes (recorded with the version).
    pub published_by: String,
}

/// The outcome of the last publication attempt of each list, for health and metrics.
#[derive(Debug, Clone, Default)]
pub struct PublicationHealth {
    /// A technical failure (storage, signing, contention): the node cannot publish.
    pub last_failure: Option<String>,
    /// The working state breaks an integrity rule (e.g. an unconfirmed mass change): the
    /// current version keeps being served; staff must act.
    pub last_refusal: Option<String>,
    /// Publications of this list that failed or were refused since the node started.
    pub failures: u64,
    pub refusals: u64,
}

/// A version's exact published bytes and their gzip, as the publication made them: the
/// observer serves them without reading the archive back (issue 12).
pub struct ReadyToServe {
    pub document: bytes::Bytes,
    /// SHA-256 of `document` (the version's `sha256`).
    pub sha256: [u8; 32],
    /// `document` compressed as `gzip` compresses it for serving.
    pub gzip: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What a publication starts from: a list unchanged since its current version is renewed
/// from the stored version; otherwise the snapshot and the published entries it plans with.
enum Source {
    Renewal(Box<Renewal>),
    Plan(Arc<Snapshot>, BTreeMap<ListKind, Arc<ListEntries>>),
}

struct Renewal {
    standing: ListStanding,
    current: crate::storage::StoredVersion,
    /// Its entries, where the contents cache holds them.
    entries: Option<Arc<ListEntries>>,
}

/// Told of every version this publisher stores, so that it can be served at once.
#[async_trait::async_trait]
pub trait PublicationObserver: Send + Sync {
    async fn published(&self, version: &VersionRecord, ready: ReadyToServe);
}

pub struct Publisher {
    storage: Arc<dyn Storage>,
    /// The working state, shared with the mutation workflow's checks.
    state: Arc<StateCache>,
    /// Set once, by the server that serves what is published (`observe`).
    observer: OnceLock<Arc<dyn PublicationObserver>>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    /// `None` on a node configured without a signing key: it refuses to publish.
    key: RwLock<Option<Arc<SigningKey>>>,
    contents: Contents,
    /// What the check saw of each list's last published version: the next check reads only
    /// the entries that changed (`xml::check_rendered_entries`). It shares the bytes the
    /// served version holds.
    checked: Mutex<BTreeMap<ListKind, Arc<CheckedEntries>>>,
    health: Mutex<HashMap<ListKind, PublicationHealth>>,
    /// One publication at a time in this process (a plan may span several lists).
    in_progress: tokio::sync::Mutex<()>,
    /// Wakes the heartbeat when a publication fails, so that it retries soon.
    failed: tokio::sync::Notify,
}

impl Publisher {
    pub fn new(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        key: impl Into<Option<SigningKey>>,
    ) -> Self {
        Self {
            state: Arc::new(StateCache::new(storage.clone())),
            storage,
            observer: OnceLock::new(),
            clock,
            settings,
            key: RwLock::new(key.into().map(Arc::new)),
            contents: Contents::default(),
            checked: Mutex::default(),
            health: Mutex::new(HashMap::new()),
            in_progress: tokio::sync::Mutex::new(()),
            failed: tokio::sync::Notify::new(),
        }
    }

    /// Tells `observer` of every version stored from now on (one observer per publisher: the
    /// server that serves it; a second one is ignored and logged).
    pub fn observe(&self, observer: Arc<dyn PublicationObserver>) {
        if self.observer.set(observer).is_err() {
            tracing::error!("the publisher already has an observer; the second one is ignored");
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn state(&self) -> &Arc<StateCache> {
        &self.state
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Replaces the signing key (certificate renewal, SIGHUP); later publications use it.
    pub fn replace_key(&self, key: SigningKey) {
        *self.key.write().expect("key lock") = Some(Arc::new(key));
    }

    /// The key publications sign with now (the one SIGHUP put in place); the nightly export
    /// signs its manifest with it too.
    pub fn signing_key(&self) -> Result<Arc<SigningKey>, SigningError> {
        self.key.read().expect("key lock").clone().ok_or_else(|| {
            SigningError::Key(
                "no signing key: publishing needs signing.key_file and \
                 signing.certificate_chain_file in the configuration"
                    .into(),
            )
        })
    }

    /// When the signing certificate stops being valid (readiness fails closed before).
    pub fn signing_certificate_expiry(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let key = self.signing_key().ok()?;
        crate::tls::not_after(key.chain().first()?.as_ref())
    }

    pub fn health(&self, list: ListKind) -> PublicationHealth {
        self.health
            .lock()
            .expect("health lock")
            .get(&list)
            .cloned()
            .unwrap_or_default()
    }

    fn record_outcome<T>(&self, list: ListKind, outcome: &Result<T, PublishError>) {
        let mut all = self.health.lock().expect("health lock");
        let health = all.entry(list).or_default();
        (health.last_failure, health.last_refusal) = match outcome {
            Ok(_) => (None, None),
            Err(e @ PublishError::Refused { .. }) => {
                tracing::warn!(%list, reason = %e, "publication refused");
                health.refusals += 1;
                (None, Some(e.to_string()))
            }
            Err(e) => {
                tracing::error!(%list, reason = %e, "publication failed");
                self.failed.notify_one();
                health.failures += 1;
                (Some(e.to_string()), None)
            }
        };
    }

    /// Publishes the working state of `list` as its next version, together with the lists
    /// its consistency needs (each gets its next version in the same transaction). Returns
    /// the version of `list`.
    pub async fn publish(
        &self,
        list: ListKind,
        options: &PublishOptions,
    ) -> Result<VersionRecord, PublishError> {
        let outcome = self.publish_attempts(list, options).await;
        self.record_outcome(list, &outcome);
        let mut published = None;
        for (version, ready) in outcome? {
            // The lists the plan took along were published too.
            self.record_outcome(version.list, &Ok::<_, PublishError>(()));
            if let (Some(observer), Some(ready)) = (self.observer.get(), ready) {
                observer.published(&version, ready).await;
            }
            if version.list == list {
                published = Some(version);
            }
        }
        Ok(published.expect("a plan publishes the list it was made for"))
    }

    async fn publish_attempts(
        &self,
        list: ListKind,
        options: &PublishOptions,
    ) -> Result<Vec<(VersionRecord, Option<ReadyToServe>)>, PublishError> {
        let _turn = self.in_progress.lock().await;
        let _urgent = background::urgent();
        let for_serving = self.observer.get().is_some();
        for _ in 0..MAX_ATTEMPTS {
            let started = std::time::Instant::now();
            let source = match self.renewable(list).await? {
                Some(renewal) => Source::Renewal(Box::new(renewal)),
                None => {
                    let snapshot = self.state.snapshot().await?;
                    let published = self.published_entries(&snapshot).await?;
                    Source::Plan(snapshot, published)
                }
            };
            let read = started.elapsed();
            let key = self.signing_key()?;
            let now = self.clock.now();
            let settings = self.settings;
            let options = options.clone();
            let earlier = self.checked.lock().expect("checked lock").clone();
            let prepared = tokio::task::spawn_blocking(move || {
                background::run_prioritised(background::PUBLICATION, || {
                    let publication = Publication {
                        key: &key,
                        settings,
                        options: &options,
                        now,
                        for_serving,
                        earlier: &earlier,
                    };
                    match source {
                        Source::Renewal(renewal) => {
                            let Renewal {
                                standing,
                                current,
                                entries,
                            } = *renewal;
                            prepare_renewal(&standing, current, entries, &publication)
                                .map(|renewed| vec![renewed])
                        }
                        Source::Plan(snapshot, published) => {
                            prepare_plan(list, snapshot, &published, &publication)
                        }
                    }
                })
            })
            .await
            .expect("preparing a version does not panic")?;
            let versions: Vec<NewVersion> = prepared.iter().map(|p| p.version.clone()).collect();
            let prepared_at = started.elapsed();
            match self.storage.store_versions(&versions).await {
                Ok(()) => {
                    // Where an approval's wait goes (issue 25), for whoever looks at the log.
                    let millis = |d: std::time::Duration| d.as_millis() as u64;
                    let (read_ms, prepare_ms, store_ms) = (
                        millis(read),
                        millis(prepared_at - read),
                        millis(started.elapsed() - prepared_at),
                    );
                    let mut records = Vec::new();
                    for Prepared {
                        version,
                        entries,
                        ready,
                        checked,
                    } in prepared
                    {
                        let record = version.record;
                        if let Some(checked) = checked {
                            let mut memo = self.checked.lock().expect("checked lock");
                            memo.insert(record.list, Arc::new(checked));
                        }
                        tracing::info!(list = %record.list, volgnummer = %record.volgnummer,
                            heartbeat = record.heartbeat, bytes = record.size_bytes, read_ms,
                            prepare_ms, store_ms, "published");
                        if let Some(entries) = entries {
                            self.contents.remember(&record.sha256, entries);
                        }
                        records.push((record, ready));
                    }
                    return Ok(records);
                }
                Err(StorageError::StaleList { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PublishError::Contention { list })
    }

    /// What a renewal of `list` needs, if the list did not change since its current version
    /// (`renewal.rs`): where it stands and the stored current version.
    async fn renewable(&self, list: ListKind) -> Result<Option<Renewal>, PublishError> {
        let standing = self.storage.list_standing(list).await?;
        let Some(current) = standing
            .current
            .as_ref()
            .filter(|_| standing.unchanged_since_published())
        else {
            return Ok(None);
        };
        let Some(stored) = self.storage.version(list, current.volgnummer).await? else {
            return Ok(None);
        };
        if stored.record.purged_at.is_some() {
            return Ok(None);
        }
        Ok(Some(Renewal {
            entries: self.contents.get(&current.sha256),
            standing,
            current: stored,
        }))
    }

    /// The entries of each list's current published version in `snapshot`, where they are
    /// not the working state itself: from memory, or parsed from the archive. A list unchanged
    /// since its current version (a heartbeat) needs neither (issue 25: a CLI heartbeat of a
    /// 10 000-Zorgaanbieder ZAL spent half its time parsing the stored version).
    async fn published_entries(
        &self,
        snapshot: &Snapshot,
    ) -> Result<BTreeMap<ListKind, Arc<ListEntries>>, PublishError> {
        let mut published = BTreeMap::new();
        for (&list, listed) in &snapshot.lists {
            if let Some(current) = &listed.standing.current {
                let entries = match self.contents.get(&current.sha256) {
                    Some(entries) => entries,
                    // `prepare_plan` takes the working state for it.
                    None if listed.standing.unchanged_since_published() => continue,
                    None => self.content(current).await?,
                };
                published.insert(list, entries);
            }
        }
        Ok(published)
    }
}
