//! The current version of each list, held in memory as ready-to-send bytes, swapped
//! atomically when a newer version appears.
//!
//! Content codings (issue 25): a version is served the moment its identity bytes and a fast
//! gzip (made during the publication, in parallel with its other steps) are ready. The best
//! gzip, zstd and brotli are made afterwards, one after another on the low-priority thread
//! for later work (`background::run_later`), and each is served from the moment it is set;
//! a version replaced meanwhile is not compressed further. Every representation has its
//! own strong ETag: identity's is the version's SHA-256; a coding's adds the coding and the
//! start of its own bytes' SHA-256, so a client never gets bytes of two versions, or of two
//! compressions (the fast and the best gzip; another replica's or another release's
//! compressor), under one ETag — and its `Content-Digest` stays true after a 304.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::encoding::Encoding;
use crate::domain::{ListEntries, ListKind, VersionRecord};
use crate::metrics::Metrics;
use crate::publication::{
    PublicationObserver, PublishError, ReadyToServe, assemble, gzip, gzip_joined,
};
use crate::sla::SlaService;
use crate::storage::{LogStore, StorageError, StoredVersion, VersionStore};
use crate::tls::Tls;
use crate::transparency::TransparencyLog;
use crate::xml::parse_list;

/// One representation of a version: its bytes and the headers that describe them, made
/// once per version rather than per request.
#[derive(Debug)]
pub struct Representation {
    pub encoding: Encoding,
    pub bytes: Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    pub etag_header: HeaderValue,
    /// `sha-256=:…:` over exactly these bytes (RFC 9530).
    pub content_digest: HeaderValue,
    /// SHA-256 of these bytes, lowercase hex.
    pub sha256: String,
}

impl Representation {
    /// A coding of the version whose SHA-256 is `version_sha256`.
    fn coded(encoding: Encoding, bytes: impl Into<Bytes>, version_sha256: &str) -> Self {
        let bytes = bytes.into();
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let etag = coded_etag(version_sha256, encoding, &sha256);
        Self::with_digest(encoding, bytes, etag, sha256)
    }

    /// The same, given the SHA-256 of `bytes`.
    fn with_digest(
        encoding: Encoding,
        bytes: impl Into<Bytes>,
        etag: String,
        sha256: [u8; 32],
    ) -> Self {
        let digest = format!("sha-256=:{}:", BASE64.encode(sha256));
        Self {
            encoding,
            bytes: bytes.into(),
            etag_header: HeaderValue::from_str(&etag)
                .expect("a quoted hex digest is a valid header"),
            etag,
            content_digest: HeaderValue::from_str(&digest).expect("base64 is a valid header"),
            sha256: crate::signing::hex(&sha256),
        }
    }
}

/// The strong ETag of a coding: the version, the coding and 64 bits of the coded bytes'
/// own SHA-256 (plenty to tell apart the few compressions a version ever gets).
fn coded_etag(version_sha256: &str, encoding: Encoding, coded_sha256: &[u8; 32]) -> String {
    let coded = crate::signing::hex(&coded_sha256[..8]);
    format!("\"{version_sha256}-{}-{coded}\"", encoding.token())
}

/// A version ready to serve.
#[derive(Debug)]
pub struct ServedVersion {
    pub record: VersionRecord,
    pub identity: Representation,
    /// The fast gzip made at publication (current versions only; archived versions are sent
    /// as they are), served until `later` has the best one.
    first_gzip: Option<Representation>,
    /// The codings of `Encoding::LATER`, in that order, each set once it is made.
    later: [OnceLock<Representation>; 3],
    /// Set when a newer version replaced this one: nothing more is compressed for it.
    superseded: AtomicBool,
    pub signature: Bytes,
    /// `Last-Modified`: the Tijdstempel as an HTTP date.
    pub last_modified_header: HeaderValue,
}

impl ServedVersion {
    /// Builds a stored version's representations, with the fast gzip for a current version
    /// (CPU work: call off the async threads).
    pub fn from_stored(stored: &StoredVersion, with_gzip: bool) -> Result<Self, PublishError> {
        let bytes = assemble(stored)?;
        let sha256 = Sha256::digest(&bytes).into();
        // The same bytes as the publishing node's (`prepare`), from the stored body's gzip.
        let compressed = with_gzip.then(|| {
            let body_len = bytes.len() - stored.header.len();
            gzip_joined(&stored.header, &stored.body_gzip, body_len).unwrap_or_else(|| gzip(&bytes))
        });
        Ok(Self::new(
            stored.record.clone(),
            bytes.into(),
            sha256,
            compressed,
            stored.signature.clone(),
        ))
    }

    /// A version as this node's publication made it: the bytes it signed and their gzip.
    pub fn from_published(record: &VersionRecord, ready: ReadyToServe) -> Self {
        Self::new(
            record.clone(),
            ready.document,
            ready.sha256,
            Some(ready.gzip),
            ready.signature,
        )
    }

    /// `document` is the version's exact bytes with their SHA-256; `gzip` their fast gzip.
    fn new(
        record: VersionRecord,
        document: Bytes,
        sha256: [u8; 32],
        gzip: Option<Vec<u8>>,
        signature: Vec<u8>,
    ) -> Self {
        let sha = &record.sha256;
        let identity =
            Representation::with_digest(Encoding::Identity, document, format!("\"{sha}\""), sha256);
        let first_gzip = gzip.map(|g| Representation::coded(Encoding::Gzip, g, sha));
        let last_modified = record
            .tijdstempel
            .instant()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        Self {
            record,
            identity,
            first_gzip,
            later: Default::default(),
            superseded: AtomicBool::new(false),
            signature: signature.into(),
            last_modified_header: HeaderValue::from_str(&last_modified)
                .expect("an HTTP date is a valid header"),
        }
    }

    /// The representation served now in `encoding`, if it is made yet.
    pub fn representation(&self, encoding: Encoding) -> Option<&Representation> {
        match Encoding::LATER.iter().position(|e| *e == encoding) {
            None => Some(&self.identity),
            Some(i) => {
                let later = self.later.get(i).and_then(OnceLock::get);
                match encoding {
                    Encoding::Gzip => later.or(self.first_gzip.as_ref()),
                    _ => later,
                }
            }
        }
    }

    /// Every representation served now: identity and each coding made yet.
    pub fn available(&self) -> impl Iterator<Item = &Representation> {
        std::iter::once(Encoding::Identity)
            .chain(Encoding::LATER)
            .filter_map(|e| self.representation(e))
    }

    /// The representation of this version that `etag` names, including the fast gzip
    /// served before the best one was made.
    pub fn with_etag(&self, etag: &str) -> Option<&Representation> {
        std::iter::once(&self.identity)
            .chain(self.first_gzip.as_ref())
            .chain(self.later.iter().filter_map(OnceLock::get))
            .find(|r| r.etag == etag)
    }

    /// Whether every coding this version gets is made (archived versions get none).
    pub fn every_coding_made(&self) -> bool {
        self.first_gzip.is_none() || self.later.iter().all(|slot| slot.get().is_some())
    }

    /// Makes the codings of `Encoding::LATER` one after another, each served from the moment
    /// it is set; stops when a newer version replaced this one. Only for a current version
    /// (one with its fast gzip). CPU work: `background::run_later`.
    fn encode_later(&self) {
        if self.first_gzip.is_none() {
            return;
        }
        let sha = &self.record.sha256;
        for (slot, encoding) in self.later.iter().zip(Encoding::LATER) {
            if self.superseded.load(Ordering::Relaxed) {
                return;
            }
            let bytes = encoding.encode(&self.identity.bytes);
            let _ = slot.set(Representation::coded(encoding, bytes, sha));
        }
    }

    /// `Last-Modified`: the Tijdstempel.
    pub fn last_modified(&self) -> DateTime<Utc> {
        self.record.tijdstempel.instant()
    }
}

/// The current versions, shared by all request handlers.
#[derive(Default)]
pub struct ServedLists {
    current: RwLock<HashMap<ListKind, Arc<ServedVersion>>>,
}

impl ServedLists {
    pub fn current(&self, list: ListKind) -> Option<Arc<ServedVersion>> {
        self.current
            .read()
            .expect("served lock")
            .get(&list)
            .cloned()
    }

    /// Loads every list whose newest stored version is not the one served; returns the lists
    /// that changed. The Whitelist also goes to the TLS layer, for the handshake check.
    pub async fn refresh(
        &self,
        storage: &dyn VersionStore,
        tls: &Tls,
    ) -> Result<Vec<ListKind>, RefreshError> {
        let mut changed = Vec::new();
        for list in ListKind::ALL {
            let Some(newest) = storage.current_version(list).await? else {
                continue;
            };
            if self
                .current(list)
                .is_some_and(|served| served.record.volgnummer == newest.volgnummer)
            {
                continue;
            }
            let stored = storage
                .version(list, newest.volgnummer)
                .await?
                .ok_or_else(|| {
                    StorageError::Corrupt(format!("{list} version {} vanished", newest.volgnummer))
                })?;
            let served =
                tokio::task::spawn_blocking(move || ServedVersion::from_stored(&stored, true))
                    .await
                    .expect("assembling a version does not panic")?;
            // Never serve bytes that are not what was signed.
            if served.identity.sha256 != newest.sha256 {
                return Err(RefreshError::Integrity(list));
            }
            self.install(served, tls)?;
            changed.push(list);
        }
        Ok(changed)
    }

    /// Serves `served` as its list's current version, unless a newer one is served already
    /// (a refresh may have been quicker). The Whitelist also goes to the TLS layer.
    pub fn install(&self, served: ServedVersion, tls: &Tls) -> Result<(), RefreshError> {
        let (list, volgnummer) = (served.record.list, served.record.volgnummer);
        let newer_served = |current: &HashMap<ListKind, Arc<ServedVersion>>| {
            current
                .get(&list)
                .is_some_and(|s| s.record.volgnummer >= volgnummer)
        };
        if newer_served(&self.current.read().expect("served lock")) {
            return Ok(());
        }
        if list == ListKind::Whitelist {
            tls.set_whitelist(whitelist_hosts(&served.identity.bytes)?);
        }
        let served = Arc::new(served);
        let mut current = self.current.write().expect("served lock");
        if newer_served(&current) {
            return Ok(());
        }
        if let Some(replaced) = current.insert(list, served.clone()) {
            replaced.superseded.store(true, Ordering::Relaxed);
        }
        drop(current);
        crate::background::run_later(move || served.encode_later());
        Ok(())
    }
}

fn whitelist_hosts(document: &[u8]) -> Result<HashSet<String>, RefreshError> {
    let lijst = parse_list(document, ListKind::Whitelist)
        .map_err(|_| RefreshError::Integrity(ListKind::Whitelist))?;
    let ListEntries::Whitelist(nodes) = lijst.entries else {
        unreachable!("parsed as a Whitelist")
    };
    Ok(nodes
        .as_slice()
        .iter()
        .map(|n| n.hostname.to_string())
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the archived {0} version does not match its digest")]
    Integrity(ListKind),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Serves a version the moment this node publishes it (other replicas' versions come with
/// the refresh loop): the approval answer can promise the new list is served.
pub(super) struct ServeAtOnce {
    pub served: Arc<ServedLists>,
    pub tls: Arc<Tls>,
    /// Stores the outcome of the mutations the version published.
    pub sla: Arc<SlaService>,
    pub metrics: Arc<Metrics>,
    /// Takes the version's leaf into the tree, so its checkpoint and tiles are served too.
    pub transparency: Arc<TransparencyLog>,
    pub log_store: Arc<dyn LogStore>,
}

#[async_trait::async_trait]
impl PublicationObserver for ServeAtOnce {
    async fn published(&self, version: &VersionRecord, ready: ReadyToServe) {
        let record = version.clone();
        let served =
            tokio::task::spawn_blocking(move || ServedVersion::from_published(&record, ready))
                .await
                .expect("preparing a version to serve does not panic");
        if let Err(e) = self.served.install(served, &self.tls) {
            // The refresh loop serves it shortly; nothing is lost.
            tracing::error!(error = %e, list = %version.list, "cannot serve the new version yet");
        }
        self.sla.changed();
        self.metrics.count_publication(version);
        // Off the approval's answer (issue 26: ≤ 5 ms added to approve → served): the log
        // catches up, checks and raises the log head on its own.
        let (log, store) = (self.transparency.clone(), self.log_store.clone());
        tokio::spawn(async move {
            if let Err(e) = log.catch_up(store.as_ref()).await {
                // The refresh loop catches up shortly; the leaf is stored.
                tracing::error!(error = %e, "cannot read the transparency log");
            }
            log.cosign().await;
        });
    }
}
