//! A verified bundle read again as the items a restore writes, one at a time. Every file is
//! checked against its MANIFEST digest once more as it is read: the bundle is not ours, and
//! it could have changed since it was verified (the transaction then rolls back).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::plan::VerifiedBundle;
use crate::archive::ArchivedVersion;
use crate::archive::bundle::{AUDIT, LOG_LEAVES, MUTATIONS, STATE};
use crate::archive::lines::JsonLines;
use crate::archive::manifest::ManifestFile;
use crate::archive::untrusted::BundleDir;
use crate::domain::{ListKind, LogEntry, LogLeaf, Tijdstempel, VersionRecord, Volgnummer};
use crate::signing::hex;
use crate::storage::{RestoreItem, RestoredVersion, StoredVersion};

/// Reads a bundle's files, each only as its MANIFEST lists it.
pub(super) struct SoundFiles {
    dir: BundleDir,
    files: BTreeMap<String, ManifestFile>,
}

impl SoundFiles {
    pub(super) fn of(bundle: &VerifiedBundle) -> Self {
        Self {
            dir: BundleDir::new(&bundle.dir),
            files: bundle
                .manifest
                .files
                .iter()
                .map(|f| (f.path.clone(), f.clone()))
                .collect(),
        }
    }

    pub(super) fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let listed = self
            .files
            .get(path)
            .ok_or_else(|| format!("{path} is not in the MANIFEST"))?;
        let bytes = self
            .dir
            .read(path, listed.size)
            .map_err(|e| e.to_string())?;
        match hex(&Sha256::digest(&bytes)) == listed.sha256 && bytes.len() as u64 == listed.size {
            true => Ok(bytes),
            false => Err(format!("{path} changed since the bundle was verified")),
        }
    }

    /// The version records' paths, by list and Volgnummer.
    fn version_records(&self) -> Vec<String> {
        self.files
            .keys()
            .filter(|p| p.starts_with("versions/") && p.ends_with(".json"))
            .cloned()
            .collect()
    }

    /// One version, every part read and checked.
    fn version(&self, path: &str) -> Result<RestoredVersion, String> {
        let record: ArchivedVersion = serde_json::from_slice(&self.read(path)?)
            .map_err(|_| format!("{path} is not a version record"))?;
        let header = self.read(&record.header)?;
        let signature = self.read(&record.signature)?;
        let body_gzip = match &record.body {
            Some(body) => self.read(body)?,
            None => Vec::new(),
        };
        // A purged version of a format-1 bundle does not name its body: a placeholder that
        // no other version can share does.
        let body_sha256 = record
            .body_sha256
            .clone()
            .or_else(|| {
                let path = record.body.as_deref()?;
                Some(
                    path.strip_prefix("bodies/")?
                        .strip_suffix(".gz")?
                        .to_owned(),
                )
            })
            .unwrap_or_else(|| format!("purged-{}", record.sha256));
        let body_size = record
            .body
            .is_some()
            .then(|| record.size_bytes - header.len() as i64);
        let name = format!("{} version {}", record.list, record.volgnummer);
        Ok(RestoredVersion {
            body_size,
            published_by: "archive restore".into(),
            version: StoredVersion {
                record: VersionRecord {
                    list: record.list,
                    volgnummer: Volgnummer::new(record.volgnummer)
                        .map_err(|e| format!("{name}: {e}"))?,
                    tijdstempel: Tijdstempel::new(record.tijdstempel),
                    valid_from: record.valid_from,
                    expires_at: record.expires_at,
                    grace_seconds: record.grace_seconds,
                    superseded_at: record.superseded_at,
                    grace_until: record.grace_until,
                    sha256: record.sha256,
                    previous_sha256: record.previous_sha256,
                    heartbeat: record.heartbeat,
                    size_bytes: record.size_bytes,
                    body_sha256,
                    purged_at: record.purged_at,
                },
                header,
                body_gzip,
                signature,
            },
        })
    }

    /// The rows of one `.jsonl.gz` file (held compressed: a few megabytes at most).
    fn rows<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
    ) -> Box<dyn Iterator<Item = Result<T, String>> + Send + '_> {
        if !self.files.contains_key(path) {
            // A bundle of an older format: versions only (1), or no log (2).
            return Box::new(std::iter::empty());
        }
        match self.read(path) {
            Ok(bytes) => Box::new(JsonLines::new(std::io::Cursor::new(bytes), path)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

/// The body of the last version written per list, so an adopted copy can tell a heartbeat.
pub(super) type LastBodies = BTreeMap<ListKind, String>;

/// A bundle's items: its versions, its mutations and audit records, the leaves of its log
/// that the bundles before it did not hold (`logged`: how many they held; the count grows as
/// leaves are read), and — for the newest bundle only — its working state.
pub(super) fn bundle_items<'a>(
    files: &'a SoundFiles,
    with_state: bool,
    last_bodies: &'a mut LastBodies,
    logged: &'a mut u64,
) -> impl Iterator<Item = Result<RestoreItem, String>> + Send + 'a {
    let versions = files.version_records().into_iter().map(move |path| {
        let version = files.version(&path)?;
        let record = &version.version.record;
        last_bodies.insert(record.list, record.body_sha256.clone());
        Ok(RestoreItem::Version(Box::new(version)))
    });
    let mutations = files
        .rows(MUTATIONS)
        .map(|row| row.map(|m| RestoreItem::Mutation(Box::new(m))));
    let audit = files.rows(AUDIT).map(|row| row.map(RestoreItem::Audit));
    let leaves = files
        .rows::<String>(LOG_LEAVES)
        .enumerate()
        .filter_map(move |(index, leaf)| {
            let index = index as u64;
            (index >= *logged).then(|| {
                *logged = index + 1;
                log_entry(index, leaf?)
            })
        });
    let state = match with_state {
        true => files.rows(STATE),
        false => Box::new(std::iter::empty()),
    }
    .map(|row| row.map(RestoreItem::State));
    versions
        .chain(mutations)
        .chain(audit)
        .chain(leaves)
        .chain(state)
}

/// Leaf `index` of a bundle's log (verified: it parses).
fn log_entry(index: u64, leaf: String) -> Result<RestoreItem, String> {
    let leaf = LogLeaf::from_stored(leaf.into_bytes());
    let content = leaf
        .content()
        .map_err(|e| format!("{LOG_LEAVES}: leaf {index}: {e}"))?;
    Ok(RestoreItem::LogLeaf(LogEntry {
        index,
        list: content.list,
        volgnummer: content.volgnummer,
        leaf,
    }))
}
