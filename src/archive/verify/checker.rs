//! The checks of one bundle's parts: its files against the MANIFEST (digests, sizes, no
//! strays), each version's record against its bytes and signature, each list's chain. The
//! `Checker` collects problems instead of stopping at the first, so an auditor sees them all.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::{BundleState, BundleTrust, MAX_FILES, MAX_SMALL_FILE, Manifest, Problem};
use crate::archive::bundle::{ArchivedVersion, MANIFEST, MANIFEST_SIGNATURE, version_path};
use crate::archive::chain::chain_problems;
use crate::archive::manifest::{is_bundle_path, is_sha256, printable};
use crate::archive::untrusted::BundleDir;
use crate::domain::ListKind;
use crate::signing::{hex, verify_signature_of_digest};
use crate::storage::RestoreRecord;

/// The last body decompressed of each list: consecutive versions of a list mostly share one
/// (heartbeats), also across the bundles a restore verifies one after the other, so each body
/// is decompressed once and kept while it is used — one version's bytes per list in memory.
/// A body is known by the SHA-256 of its gzip file, which the signed MANIFEST vouched for:
/// the same digest, the same bytes, whichever bundle they came from.
#[derive(Default)]
pub struct BodyCache {
    by_list: BTreeMap<ListKind, (String, Vec<u8>)>,
}

impl BodyCache {
    /// The body of a `list` version at `path`, whose gzip file has `gzip_sha256`,
    /// decompressed; at most `limit` bytes are inflated (one more shows it is longer), `limit`
    /// coming from a record whose digest held.
    fn get(
        &mut self,
        bundle: &BundleDir,
        list: ListKind,
        path: &str,
        gzip_sha256: &str,
        limit: u64,
    ) -> Result<&[u8], String> {
        let (known, bytes) = self.by_list.entry(list).or_default();
        if known != gzip_sha256 {
            known.clear();
            // The old body goes before the new one is read: one body per list in memory,
            // reserved at its size (growing by doubling would hold half as much again).
            *bytes = Vec::new();
            let wanted = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
            bytes
                .try_reserve_exact(wanted)
                .map_err(|_| format!("{path} is larger than this machine can hold"))?;
            let file = std::io::BufReader::new(bundle.open(path).map_err(|e| e.to_string())?);
            GzDecoder::new(file)
                .take(limit.saturating_add(1))
                .read_to_end(bytes)
                .map_err(|_| format!("{path} is not a gzip stream"))?;
            gzip_sha256.clone_into(known);
        }
        Ok(bytes)
    }
}

fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    if !is_sha256(text) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// One run of the verifier over one bundle.
pub(super) struct Checker<'a> {
    bundle: BundleDir,
    trust: &'a BundleTrust,
    pub(super) problems: Vec<Problem>,
    bodies: &'a mut BodyCache,
    /// The files whose digest and size matched the signed MANIFEST — the only ones read —
    /// with that digest.
    sound: BTreeMap<String, String>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        bundle: BundleDir,
        trust: &'a BundleTrust,
        bodies: &'a mut BodyCache,
    ) -> Self {
        Self {
            bundle,
            trust,
            problems: Vec::new(),
            bodies,
            sound: BTreeMap::new(),
        }
    }
}

impl Checker<'_> {
    pub(super) fn content(&mut self, message: impl Into<String>) {
        self.problems.push(Problem::content(message));
    }

    /// Whether the file's digest and size matched the MANIFEST.
    pub(super) fn sound_contains(&self, path: &str) -> bool {
        self.sound.contains_key(path)
    }

    pub(super) fn bundle(&self) -> &BundleDir {
        &self.bundle
    }

    /// A small file whose digest held.
    pub(super) fn read_sound(&mut self, path: &str) -> Option<Vec<u8>> {
        if !self.sound.contains_key(path) {
            return None;
        }
        match self.bundle.read(path, MAX_SMALL_FILE) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.content(e.to_string());
                None
            }
        }
    }

    /// Files: each as listed, none missing, none added, nothing but regular files.
    pub(super) fn check_files(&mut self, manifest: &Manifest) {
        let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        match self.bundle.list(MAX_FILES) {
            Ok(present) => {
                for extra in present.iter().filter(|p| {
                    !listed.contains(p.as_str()) && *p != MANIFEST && *p != MANIFEST_SIGNATURE
                }) {
                    self.content(format!("{} is not in the MANIFEST", printable(extra)));
                }
            }
            Err(e) => self.content(e),
        }
        for file in &manifest.files {
            match self.bundle.digest(&file.path, file.size) {
                Ok((sha256, size)) if sha256 == file.sha256 && size == file.size => {
                    self.sound.insert(file.path.clone(), sha256);
                }
                Ok(_) => self.content(format!(
                    "{} does not match its SHA-256 and size in the MANIFEST",
                    file.path
                )),
                Err(e) => self.content(e.to_string()),
            }
        }
    }

    /// The version records whose digest held, by list, sorted by Volgnummer; each must sit
    /// where its list and Volgnummer say.
    pub(super) fn read_records(
        &mut self,
        manifest: &Manifest,
    ) -> BTreeMap<ListKind, Vec<ArchivedVersion>> {
        let mut by_list: BTreeMap<ListKind, Vec<ArchivedVersion>> = BTreeMap::new();
        for file in manifest
            .files
            .iter()
            .filter(|f| f.path.starts_with("versions/") && f.path.ends_with(".json"))
        {
            let Some(bytes) = self.read_sound(&file.path) else {
                continue;
            };
            match serde_json::from_slice::<ArchivedVersion>(&bytes) {
                Ok(v) if version_path(v.list, v.volgnummer, "json") != file.path => {
                    self.content(format!(
                        "{} holds the record of {} version {}",
                        file.path, v.list, v.volgnummer
                    ));
                }
                Ok(v) => by_list.entry(v.list).or_default().push(v),
                Err(_) => self.content(format!("{} is not a version record", file.path)),
            }
        }
        for versions in by_list.values_mut() {
            versions.sort_by_key(|v| v.volgnummer);
        }
        by_list
    }

    /// One version's parts sit where its record says and their digests held, its bytes match
    /// its record, its signature its bytes and record.
    fn check_version(&mut self, v: &ArchivedVersion) {
        let name = format!("{} version {}", v.list, v.volgnummer);
        if v.header != version_path(v.list, v.volgnummer, "header")
            || v.signature != version_path(v.list, v.volgnummer, "sig")
        {
            self.content(format!(
                "{name}: its parts are not where the layout puts them"
            ));
            return;
        }
        let body_ok = v.body.as_deref().is_none_or(|b| {
            is_bundle_path(b)
                && b.strip_prefix("bodies/")
                    .and_then(|b| b.strip_suffix(".gz"))
                    .is_some_and(is_sha256)
        });
        let names_its_body = match (&v.body, &v.body_sha256) {
            (Some(body), Some(sha)) => *body == format!("bodies/{sha}.gz"),
            _ => true,
        };
        if !body_ok || !names_its_body {
            self.content(format!("{name}: its body is not where the layout puts it"));
            return;
        }
        let parts = [Some(&v.header), v.body.as_ref(), Some(&v.signature)];
        if parts
            .into_iter()
            .flatten()
            .any(|part| !self.sound.contains_key(part.as_str()))
        {
            // Missing, or failed its digest: already reported.
            return;
        }
        let Some(header) = self.read_sound(&v.header) else {
            return;
        };
        let digest: [u8; 32] = match (&v.body, v.purged_at) {
            (Some(body), _) => {
                let limit = u64::try_from(v.size_bytes)
                    .unwrap_or(0)
                    .saturating_sub(header.len() as u64);
                let gzip_sha256 = self.sound.get(body).cloned().unwrap_or_default();
                let bytes = match self
                    .bodies
                    .get(&self.bundle, v.list, body, &gzip_sha256, limit)
                {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        self.content(format!("{name}: its body cannot be read: {e}"));
                        return;
                    }
                };
                let digest: [u8; 32] = Sha256::new()
                    .chain_update(&header)
                    .chain_update(bytes)
                    .finalize()
                    .into();
                let size = (header.len() + bytes.len()) as u64;
                if hex(&digest) != v.sha256 || i64::try_from(size).ok() != Some(v.size_bytes) {
                    self.content(format!("{name}: its bytes do not match its SHA-256"));
                    return;
                }
                digest
            }
            // Purged: the signature still has to vouch for the recorded SHA-256.
            (None, Some(_)) => match decode_sha256(&v.sha256) {
                Some(digest) => digest,
                None => {
                    self.content(format!("{name}: its SHA-256 is malformed"));
                    return;
                }
            },
            (None, None) => {
                self.content(format!("{name}: has no body and was not purged"));
                return;
            }
        };
        let Some(signature) = self.read_sound(&v.signature) else {
            return;
        };
        let check = match verify_signature_of_digest(
            &signature,
            &digest,
            &self.trust.anchors,
            v.tijdstempel,
        ) {
            Ok(check) => check,
            Err(e) => {
                self.content(format!("{name}: its signature does not verify: {e}"));
                return;
            }
        };
        if let Err(e) = self.trust.signers.check(&check.signer) {
            self.content(format!("{name}: its signature does not verify: {e}"));
            return;
        }
        let p = &check.properties;
        if p.list != v.list
            || p.volgnummer.get() != v.volgnummer
            || p.tijdstempel.instant() != v.tijdstempel
            || p.valid_from.instant() != v.valid_from
            || p.expires_at.instant() != v.expires_at
            || p.previous_sha256 != v.previous_sha256
        {
            self.content(format!(
                "{name}: its record differs from what its signature signs"
            ));
        }
    }
}

impl Checker<'_> {
    /// Every version of every list, each list's chain (towards the last bundle seen when
    /// this one `follows` it), and the MANIFEST's Volgnummer ranges against what the bundle
    /// holds. Returns how many versions it checked.
    pub(super) fn check_lists(
        &mut self,
        manifest: &Manifest,
        by_list: &BTreeMap<ListKind, Vec<ArchivedVersion>>,
        follows: Option<&BundleState>,
        restores: &[RestoreRecord],
    ) -> usize {
        let mut versions = 0;
        for (list, found) in by_list {
            for v in found {
                versions += 1;
                self.check_version(v);
            }
            let after = follows
                .and_then(|s| s.lists.get(list))
                .map(|(n, sha)| (*n, sha.as_str()));
            for problem in chain_problems(*list, found, after, restores) {
                self.content(problem);
            }
            let range = found
                .first()
                .zip(found.last())
                .map(|(a, b)| (a.volgnummer, b.volgnummer));
            if manifest.volgnummers.get(list).copied().flatten() != range {
                self.content(format!(
                    "{list}: the MANIFEST names other Volgnummers than the bundle holds"
                ));
            }
        }
        for (list, range) in &manifest.volgnummers {
            if range.is_some() && !by_list.contains_key(list) {
                self.content(format!(
                    "{list}: the MANIFEST names versions the bundle lacks"
                ));
            }
        }
        versions
    }
}
