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
//! `heartbeat.rs` renews validity; `honoured.rs` answers the honoured query; `contents.rs`
//! caches published entries; `document.rs` the stored form (header + shared gzip body).

mod contents;
mod document;
mod heartbeat;
mod honoured;
mod prepare;
mod preview;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use chrono::Duration;

use self::contents::Contents;
use self::prepare::{Prepared, Publication, prepare_plan};
use crate::background;
use crate::clock::Clock;
use crate::config::PublicationConfig;
use crate::domain::Snapshot;
use crate::domain::{ListEntries, ListKind, VersionRecord, Violations, Volgnummer};
use crate::signing::{SigningError, SigningKey};
use crate::storage::{NewVersion, StateCache, Storage, StorageError};
use crate::xml::{CheckedEntries, parse_list};

pub use document::{CorruptArchive, assemble, gzip, gzip_joined, header_len};
pub use honoured::Honoured;
pub use preview::{Preview, Verdict};

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

/// What `Publisher::version_content` found.
pub enum VersionContent {
    Entries(Arc<ListEntries>),
    /// Retention purged its bytes at `at` (its record stays).
    Purged {
        at: chrono::DateTime<chrono::Utc>,
    },
    /// The list has no such version.
    Missing,
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
            let snapshot = self.state.snapshot().await?;
            let published = self.published_entries(&snapshot).await?;
            let key = self.signing_key()?;
            let now = self.clock.now();
            let settings = self.settings;
            let options = options.clone();
            let earlier = self.checked.lock().expect("checked lock").clone();
            let prepared = tokio::task::spawn_blocking(move || {
                let publication = Publication {
                    key: &key,
                    settings,
                    options: &options,
                    now,
                    for_serving,
                    earlier: &earlier,
                };
                prepare_plan(list, snapshot, &published, &publication)
            })
            .await
            .expect("preparing a version does not panic")?;
            let versions: Vec<NewVersion> = prepared.iter().map(|p| p.version.clone()).collect();
            match self.storage.store_versions(&versions).await {
                Ok(()) => {
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
                            heartbeat = record.heartbeat, bytes = record.size_bytes, "published");
                        self.contents.remember(&record.sha256, entries);
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
            if let Some(current) = &listed.current {
                let entries = match self.contents.get(&current.sha256) {
                    Some(entries) => entries,
                    // `prepare_plan` takes the working state for it.
                    None if listed.unchanged_since_published() => continue,
                    None => self.content(current).await?,
                };
                published.insert(list, entries);
            }
        }
        Ok(published)
    }

    /// Parses the current versions ahead of the first publication after a start, so that
    /// the first approval does not wait for the archive to be read (10 000 entries: ~0.4 s).
    pub async fn warm_up(&self) {
        for list in ListKind::ALL {
            let current = match self.storage.current_version(list).await {
                Ok(Some(current)) => current,
                Ok(None) => continue,
                Err(e) => return tracing::warn!(error = %e, "cannot warm up the content cache"),
            };
            if let Err(e) = self.content(&current).await {
                tracing::warn!(error = %e, %list, "cannot warm up the content cache");
            }
        }
    }

    /// Every version of `list`, oldest first.
    pub async fn versions(&self, list: ListKind) -> Result<Vec<VersionRecord>, PublishError> {
        Ok(self.storage.versions(list).await?)
    }

    /// Version `volgnummer` of `list` as stored: header, shared body, signature.
    pub async fn stored_version(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<Option<crate::storage::StoredVersion>, PublishError> {
        Ok(self.storage.version(list, volgnummer).await?)
    }

    /// The versions of `list` that could be honoured at `at`: valid then, not out of grace.
    pub async fn versions_honoured_at(
        &self,
        list: ListKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<VersionRecord>, PublishError> {
        Ok(self.storage.versions_honoured_at(list, at).await?)
    }

    /// The entries of version `volgnummer` of `list`, if it exists and retention left them.
    pub async fn version_content(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<VersionContent, PublishError> {
        let Some(stored) = self.storage.version(list, volgnummer).await? else {
            return Ok(VersionContent::Missing);
        };
        Ok(match stored.record.purged_at {
            Some(at) => VersionContent::Purged { at },
            None => VersionContent::Entries(self.content(&stored.record).await?),
        })
    }

    /// The entries of a published version, from memory or from the archive.
    pub async fn content(&self, record: &VersionRecord) -> Result<Arc<ListEntries>, PublishError> {
        if let Some(entries) = self.contents.get(&record.sha256) {
            return Ok(entries);
        }
        let stored = self
            .storage
            .version(record.list, record.volgnummer)
            .await?
            .ok_or_else(|| {
                StorageError::Corrupt(format!(
                    "{} version {} is missing",
                    record.list, record.volgnummer
                ))
            })?;
        let list = record.list;
        // Decompressing and parsing 10 000 Zorgaanbieders takes most of a second: not on an
        // async worker.
        let entries = tokio::task::spawn_blocking(move || -> Result<_, PublishError> {
            let document = assemble(&stored)?;
            let corrupt =
                |v| StorageError::Corrupt(format!("archived {list} version does not parse: {v}"));
            Ok(parse_list(&document, list).map_err(corrupt)?.entries)
        })
        .await
        .expect("parsing does not panic")?;
        let entries = Arc::new(entries);
        self.contents.remember(&record.sha256, entries.clone());
        Ok(entries)
    }
}
