//! The offline verifier of a bundle (`stelselnode archive verify`): no database, no network,
//! only the bundle, the CA and the state of the last bundle seen. It reports every problem it
//! finds, not only the first, and writes the new state only when there is none.
//!
//! Checked: the manifest's signature; every file's digest and size, and that no file is
//! missing or added; every version's bytes (header + gunzipped body) against its record, and
//! its signature, made by a certificate that chained to the CA when the version was signed;
//! per list, Volgnummers without a gap and each version naming its predecessor's SHA-256,
//! also across into the last bundle seen; validity windows that follow each other without a
//! gap; and that the bundle is neither older than the last one seen (rollback) nor past its
//! `expires` (freeze).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bundle::{ArchivedVersion, MANIFEST, MANIFEST_SIGNATURE};
use super::manifest::{MAX_MANIFEST_BYTES, Manifest, is_bundle_path, printable};
use crate::domain::ListKind;
use crate::signing::{hex, verify_detached, verify_signature_of_digest};

/// The largest version record or signature file read into memory.
const MAX_SMALL_FILE: u64 = 1024 * 1024;

/// How bad a problem is; the exit code is that of the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Content, signature, digest, chain (exit 4).
    Content,
    /// Past its `expires` (exit 5).
    Expired,
    /// Older than the last bundle seen (exit 6).
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
}

/// What the verifier remembers of the last bundle it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleState {
    pub manifest_sha256: String,
    pub covers_up_to: DateTime<Utc>,
    /// Per list the last Volgnummer seen and its SHA-256.
    pub lists: BTreeMap<ListKind, (i64, String)>,
}

/// An accepted bundle.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub versions: usize,
    pub state: BundleState,
}

struct Checker {
    dir: PathBuf,
    problems: Vec<Problem>,
    bodies: BodyCache,
}

impl Checker {
    fn content(&mut self, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Content,
            message: message.into(),
        });
    }

    fn read_small(&mut self, path: &str) -> Option<Vec<u8>> {
        let full = self.dir.join(path);
        let read = std::fs::File::open(&full).and_then(|f| {
            let mut bytes = Vec::new();
            f.take(MAX_SMALL_FILE + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        match read {
            Ok(bytes) if bytes.len() as u64 <= MAX_SMALL_FILE => Some(bytes),
            Ok(_) => {
                self.content(format!("{path} is larger than {MAX_SMALL_FILE} bytes"));
                None
            }
            Err(e) => {
                self.content(format!("{path} cannot be read: {e}"));
                None
            }
        }
    }
}

/// SHA-256 and size of a file, streamed.
fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Every file under `dir`, as bundle paths (`/`-separated).
fn files_in(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.insert(parts.join("/"));
            }
        }
    }
    Ok(found)
}

/// The last body decompressed: consecutive versions of a list mostly share one (heartbeats),
/// so each body is decompressed once and kept while it is used — one version's bytes in memory.
#[derive(Default)]
struct BodyCache {
    path: String,
    bytes: Vec<u8>,
}

impl BodyCache {
    /// The body at `path` (a bundle path), decompressed; at most `limit` bytes are read, so a
    /// hostile body cannot fill memory beyond what its record claims.
    fn get(&mut self, dir: &Path, path: &str, limit: u64) -> std::io::Result<&[u8]> {
        if self.path != path {
            self.path.clear();
            self.bytes.clear();
            let file = std::io::BufReader::new(std::fs::File::open(dir.join(path))?);
            GzDecoder::new(file)
                .take(limit.saturating_add(1))
                .read_to_end(&mut self.bytes)?;
            self.path = path.to_owned();
        }
        Ok(&self.bytes)
    }
}

fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    if !super::manifest::is_sha256(text) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Verifies the bundle in `dir` against `ca` and the last bundle seen (`state`), at `now`.
/// `Err` holds every problem found.
pub fn verify_bundle(
    dir: &Path,
    ca: &[CertificateDer<'_>],
    state: Option<&BundleState>,
    now: DateTime<Utc>,
) -> Result<Verified, Vec<Problem>> {
    let mut c = Checker {
        dir: dir.to_path_buf(),
        problems: Vec::new(),
        bodies: BodyCache::default(),
    };
    let fatal = |message: String| {
        vec![Problem {
            severity: Severity::Content,
            message,
        }]
    };
    let manifest_path = dir.join(MANIFEST);
    let text = match std::fs::metadata(&manifest_path) {
        Ok(m) if m.len() > MAX_MANIFEST_BYTES => {
            return Err(fatal("MANIFEST is too large".into()));
        }
        Ok(_) => std::fs::read(&manifest_path)
            .map_err(|e| fatal(format!("MANIFEST cannot be read: {e}")))?,
        Err(e) => return Err(fatal(format!("MANIFEST cannot be read: {e}"))),
    };
    let digest: [u8; 32] = Sha256::digest(&text).into();
    let manifest_sha256 = hex(&digest);
    let text = String::from_utf8(text).map_err(|_| fatal("MANIFEST is not UTF-8".into()))?;
    let manifest = Manifest::parse(&text).map_err(fatal)?;

    // The signature, by a certificate valid when the bundle was made.
    if let Some(signature) = c.read_small(MANIFEST_SIGNATURE)
        && let Err(e) = verify_detached(&signature, MANIFEST, &digest, ca, manifest.covers_up_to)
    {
        c.content(format!("the MANIFEST signature does not verify: {e}"));
    }

    // Files: each as listed, none missing, none added.
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    match files_in(dir) {
        Ok(present) => {
            for extra in present.iter().filter(|p| {
                !listed.contains(p.as_str()) && *p != MANIFEST && *p != MANIFEST_SIGNATURE
            }) {
                c.content(format!("{} is not in the MANIFEST", printable(extra)));
            }
        }
        Err(e) => c.content(format!("the bundle cannot be listed: {e}")),
    }
    for file in &manifest.files {
        match digest_file(&dir.join(&file.path)) {
            Ok((sha256, size)) if sha256 == file.sha256 && size == file.size => {}
            Ok(_) => c.content(format!(
                "{} does not match its SHA-256 and size in the MANIFEST",
                file.path
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                c.content(format!("{} is missing", file.path))
            }
            Err(e) => c.content(format!("{} cannot be read: {e}", file.path)),
        }
    }

    // Versions: bytes, signatures, chains, windows.
    let mut by_list: BTreeMap<ListKind, Vec<ArchivedVersion>> = BTreeMap::new();
    for file in manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("versions/") && f.path.ends_with(".json"))
    {
        let Some(bytes) = c.read_small(&file.path) else {
            continue;
        };
        match serde_json::from_slice::<ArchivedVersion>(&bytes) {
            Ok(v) => by_list.entry(v.list).or_default().push(v),
            Err(e) => c.content(format!("{} is not a version record: {e}", file.path)),
        }
    }
    let mut versions = 0;
    for (list, found) in by_list.iter_mut() {
        found.sort_by_key(|v| v.volgnummer);
        for v in found.iter() {
            versions += 1;
            check_version(&mut c, &listed, v, ca);
        }
        check_chain(&mut c, *list, found, state);
        let range = found
            .first()
            .zip(found.last())
            .map(|(a, b)| (a.volgnummer, b.volgnummer));
        if manifest.volgnummers.get(list).copied().flatten() != range {
            c.content(format!(
                "{list}: the MANIFEST names other Volgnummers than the bundle holds"
            ));
        }
    }
    for (list, range) in &manifest.volgnummers {
        if range.is_some() && !by_list.contains_key(list) {
            c.content(format!(
                "{list}: the MANIFEST names versions the bundle lacks"
            ));
        }
    }

    // Freshness.
    if let Some(seen) = state {
        if manifest.covers_up_to < seen.covers_up_to
            || (manifest.covers_up_to == seen.covers_up_to
                && manifest_sha256 != seen.manifest_sha256)
        {
            c.problems.push(Problem {
                severity: Severity::Rollback,
                message: format!(
                    "the bundle covers up to {}, not after the last bundle seen ({})",
                    manifest.covers_up_to, seen.covers_up_to
                ),
            });
        } else if manifest_sha256 != seen.manifest_sha256
            && manifest.previous_manifest.as_deref() != Some(seen.manifest_sha256.as_str())
        {
            c.content("the bundle does not follow the last bundle seen (previous-manifest-sha256)");
        }
    }
    if now > manifest.expires {
        c.problems.push(Problem {
            severity: Severity::Expired,
            message: format!(
                "the bundle expired at {}: a newer export should exist (freeze)",
                manifest.expires
            ),
        });
    }

    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
        return Err(c.problems);
    }
    let mut lists = state.map(|s| s.lists.clone()).unwrap_or_default();
    for (list, found) in &by_list {
        if let Some(last) = found.last() {
            lists.insert(*list, (last.volgnummer, last.sha256.clone()));
        }
    }
    Ok(Verified {
        state: BundleState {
            manifest_sha256,
            covers_up_to: manifest.covers_up_to,
            lists,
        },
        manifest,
        versions,
    })
}

/// One version's parts are listed, its bytes match its record, its signature its bytes and
/// record.
fn check_version(
    c: &mut Checker,
    listed: &BTreeSet<&str>,
    v: &ArchivedVersion,
    ca: &[CertificateDer<'_>],
) {
    let name = format!("{} version {}", v.list, v.volgnummer);
    let parts = [Some(&v.header), v.body.as_ref(), Some(&v.signature)];
    for part in parts.into_iter().flatten() {
        if !is_bundle_path(part) || !listed.contains(part.as_str()) {
            c.content(format!(
                "{name}: its part {} is not in the MANIFEST",
                printable(part)
            ));
            return;
        }
    }
    let Some(header) = c.read_small(&v.header) else {
        return;
    };
    let digest: [u8; 32] = match (&v.body, v.purged_at) {
        (Some(body), _) => {
            let limit = (v.size_bytes.max(0) as u64).saturating_sub(header.len() as u64);
            match c.bodies.get(&c.dir, body, limit) {
                Ok(bytes) => {
                    let digest: [u8; 32] = Sha256::new()
                        .chain_update(&header)
                        .chain_update(bytes)
                        .finalize()
                        .into();
                    let size = header.len() + bytes.len();
                    if hex(&digest) != v.sha256 || size as u64 != v.size_bytes as u64 {
                        c.content(format!("{name}: its bytes do not match its SHA-256"));
                        return;
                    }
                    digest
                }
                Err(e) => {
                    c.content(format!("{name}: its body cannot be read: {e}"));
                    return;
                }
            }
        }
        // Purged: the signature still has to vouch for the recorded SHA-256.
        (None, Some(_)) => match decode_sha256(&v.sha256) {
            Some(digest) => digest,
            None => {
                c.content(format!("{name}: its SHA-256 is malformed"));
                return;
            }
        },
        (None, None) => {
            c.content(format!("{name}: has no body and was not purged"));
            return;
        }
    };
    let Some(signature) = c.read_small(&v.signature) else {
        return;
    };
    match verify_signature_of_digest(&signature, &digest, ca, v.tijdstempel) {
        Ok(check) => {
            let p = &check.properties;
            if p.list != v.list
                || p.volgnummer.get() != v.volgnummer
                || p.tijdstempel.instant() != v.tijdstempel
                || p.valid_from.instant() != v.valid_from
                || p.expires_at.instant() != v.expires_at
                || p.previous_sha256 != v.previous_sha256
            {
                c.content(format!(
                    "{name}: its record differs from what its signature signs"
                ));
            }
        }
        Err(e) => c.content(format!("{name}: its signature does not verify: {e}")),
    }
}

/// Volgnummers without a gap, each version naming its predecessor, windows that follow.
fn check_chain(
    c: &mut Checker,
    list: ListKind,
    versions: &[ArchivedVersion],
    state: Option<&BundleState>,
) {
    if let (Some(first), Some((last_n, last_sha))) =
        (versions.first(), state.and_then(|s| s.lists.get(&list)))
    {
        if first.volgnummer != last_n + 1 {
            c.content(format!(
                "{list}: the bundle starts at Volgnummer {}, the last bundle seen ended at {last_n}",
                first.volgnummer
            ));
        } else if first.previous_sha256.as_deref() != Some(last_sha.as_str()) {
            c.content(format!(
                "{list} version {}: does not name the last bundle's version as its predecessor",
                first.volgnummer
            ));
        }
    }
    for pair in versions.windows(2) {
        let [a, b] = pair else { continue };
        if b.volgnummer != a.volgnummer + 1 {
            c.content(format!(
                "{list}: Volgnummer {} is missing",
                (a.volgnummer + 1..b.volgnummer)
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        if b.previous_sha256.as_deref() != Some(a.sha256.as_str()) {
            c.content(format!(
                "{list} version {}: does not name version {} as its predecessor",
                b.volgnummer, a.volgnummer
            ));
        }
        if b.valid_from < a.valid_from {
            c.content(format!(
                "{list} version {}: valid before the version it follows",
                b.volgnummer
            ));
        }
        if b.valid_from > a.expires_at {
            c.content(format!(
                "{list}: no version was valid between {} and {}",
                a.expires_at, b.valid_from
            ));
        }
    }
}
