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
//!
//! The bundle is untrusted input (issue 21): it is read through `BundleDir` (regular files
//! inside the directory only, every read capped), and nothing is believed before it is
//! vouched for, in this order: the MANIFEST's bytes by its signature (by a certificate with
//! the codeSigning usage, and the pinned signer if one is given — a MANIFEST whose signature
//! fails ends the check, since every size and digest in it could be an attacker's); then each
//! file by its digest in the MANIFEST (a file that fails is not opened again, so a record's
//! claims — a body's size, a Volgnummer — are used only once the record's digest held); a
//! gzip body is inflated up to its verified record's size and no further.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bundle::{ArchivedVersion, MANIFEST, MANIFEST_SIGNATURE, version_path};
use super::chain::chain_problems;
use super::manifest::{MAX_MANIFEST_BYTES, Manifest, is_bundle_path, is_sha256, printable};
use super::untrusted::BundleDir;
use crate::domain::ListKind;
use crate::signing::{
    SignerIdentity, SignerPolicy, hex, verify_detached, verify_signature_of_digest,
};

/// The largest version record or signature file read into memory.
const MAX_SMALL_FILE: u64 = 1024 * 1024;
/// The most entries a bundle directory may hold (a year of nightly versions of every list is a
/// few tens of thousands).
const MAX_FILES: usize = 1_000_000;

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

impl Problem {
    fn content(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Content,
            message: message.into(),
        }
    }
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

/// Whom the verifier trusts: the CA the signing certificate chains to, and which of its
/// certificates may sign.
#[derive(Debug, Clone)]
pub struct BundleTrust {
    pub anchors: Vec<CertificateDer<'static>>,
    pub signers: SignerPolicy,
}

impl BundleTrust {
    /// Any certificate under `anchors` with the codeSigning usage.
    pub fn new(anchors: Vec<CertificateDer<'static>>) -> Self {
        Self {
            anchors,
            signers: SignerPolicy::default(),
        }
    }
}

/// An accepted bundle.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub versions: usize,
    pub state: BundleState,
    /// Who signed its MANIFEST (what `--signer` can pin next time).
    pub signer: SignerIdentity,
}

/// A MANIFEST whose signature held.
pub(super) struct SignedManifest {
    pub manifest: Manifest,
    pub sha256: String,
    pub signer: SignerIdentity,
}

/// Reads the MANIFEST of `bundle` and checks its signature against `trust` before believing
/// a word of it.
pub(super) fn read_signed_manifest(
    bundle: &BundleDir,
    trust: &BundleTrust,
) -> Result<SignedManifest, String> {
    read_manifest_checked_by(bundle, |signature, digest, signed_at| {
        let signer = verify_detached(signature, MANIFEST, digest, &trust.anchors, signed_at)
            .map_err(|e| e.to_string())?;
        trust.signers.check(&signer)
    })
}

/// Reads the MANIFEST of `bundle`; `check(signature, digest, instant)` decides whether its
/// signature holds and names the signer. Nothing of the MANIFEST is parsed before.
pub(super) fn read_manifest_checked_by(
    bundle: &BundleDir,
    check: impl FnOnce(&[u8], &[u8; 32], DateTime<Utc>) -> Result<SignerIdentity, String>,
) -> Result<SignedManifest, String> {
    let text = bundle
        .read(MANIFEST, MAX_MANIFEST_BYTES)
        .map_err(|e| e.to_string())?;
    let digest: [u8; 32] = Sha256::digest(&text).into();
    let signature = bundle
        .read(MANIFEST_SIGNATURE, MAX_SMALL_FILE)
        .map_err(|e| format!("{e}; nothing in the bundle can be trusted"))?;
    // The certificate must have been valid when the bundle was made, which only the MANIFEST
    // says: its covers-up-to line is read first; the signature then vouches for it.
    let claimed = covers_up_to(&text).ok_or("the MANIFEST is not a bundle manifest")?;
    let signer = check(&signature, &digest, claimed).map_err(|why| {
        format!(
            "the MANIFEST signature does not verify: {why}; nothing in the bundle can be trusted"
        )
    })?;
    let text = String::from_utf8(text).map_err(|_| "the MANIFEST is not UTF-8".to_owned())?;
    let manifest = Manifest::parse(&text)?;
    Ok(SignedManifest {
        manifest,
        sha256: hex(&digest),
        signer,
    })
}

/// The `covers-up-to` instant of a manifest's text, without parsing the rest.
fn covers_up_to(text: &[u8]) -> Option<DateTime<Utc>> {
    let line = text
        .split(|b| *b == b'\n')
        .take(4)
        .find_map(|line| line.strip_prefix(b"covers-up-to "))?;
    DateTime::parse_from_rfc3339(std::str::from_utf8(line).ok()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The last body decompressed: consecutive versions of a list mostly share one (heartbeats),
/// so each body is decompressed once and kept while it is used — one version's bytes in memory.
#[derive(Default)]
struct BodyCache {
    path: String,
    bytes: Vec<u8>,
}

impl BodyCache {
    /// The body at `path`, decompressed; at most `limit` bytes are inflated (one more shows it
    /// is longer), `limit` coming from a record whose digest held.
    fn get(&mut self, bundle: &BundleDir, path: &str, limit: u64) -> Result<&[u8], String> {
        if self.path != path {
            self.path.clear();
            self.bytes.clear();
            let file = std::io::BufReader::new(bundle.open(path).map_err(|e| e.to_string())?);
            GzDecoder::new(file)
                .take(limit.saturating_add(1))
                .read_to_end(&mut self.bytes)
                .map_err(|_| format!("{path} is not a gzip stream"))?;
            self.path = path.to_owned();
        }
        Ok(&self.bytes)
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
struct Checker<'a> {
    bundle: BundleDir,
    trust: &'a BundleTrust,
    problems: Vec<Problem>,
    bodies: BodyCache,
    /// The files whose digest and size matched the signed MANIFEST: the only ones read.
    sound: BTreeSet<String>,
}

impl Checker<'_> {
    fn content(&mut self, message: impl Into<String>) {
        self.problems.push(Problem::content(message));
    }

    /// A small file whose digest held.
    fn read_sound(&mut self, path: &str) -> Option<Vec<u8>> {
        if !self.sound.contains(path) {
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
    fn check_files(&mut self, manifest: &Manifest) {
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
                    self.sound.insert(file.path.clone());
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
    fn read_records(&mut self, manifest: &Manifest) -> BTreeMap<ListKind, Vec<ArchivedVersion>> {
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
        if !body_ok {
            self.content(format!("{name}: its body is not where the layout puts it"));
            return;
        }
        let parts = [Some(&v.header), v.body.as_ref(), Some(&v.signature)];
        if parts
            .into_iter()
            .flatten()
            .any(|part| !self.sound.contains(part.as_str()))
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
                let bytes = match self.bodies.get(&self.bundle, body, limit) {
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

/// Verifies the bundle in `dir` against `trust` and the last bundle seen (`state`), at `now`.
/// `Err` holds every problem found.
pub fn verify_bundle(
    dir: &std::path::Path,
    trust: &BundleTrust,
    state: Option<&BundleState>,
    now: DateTime<Utc>,
) -> Result<Verified, Vec<Problem>> {
    let bundle = BundleDir::new(dir);
    let signed = read_signed_manifest(&bundle, trust).map_err(|e| vec![Problem::content(e)])?;
    let SignedManifest {
        manifest,
        sha256: manifest_sha256,
        signer,
    } = signed;
    let mut c = Checker {
        bundle,
        trust,
        problems: Vec::new(),
        bodies: BodyCache::default(),
        sound: BTreeSet::new(),
    };
    c.check_files(&manifest);
    let by_list = c.read_records(&manifest);

    // The same bundle verified again with the state it left: it follows nothing new.
    let follows = state.filter(|s| s.manifest_sha256 != manifest_sha256);
    let mut versions = 0;
    for (list, found) in &by_list {
        for v in found {
            versions += 1;
            c.check_version(v);
        }
        let after = follows
            .and_then(|s| s.lists.get(list))
            .map(|(n, sha)| (*n, sha.as_str()));
        for problem in chain_problems(*list, found, after) {
            c.content(problem);
        }
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
    if let Some(seen) = state {
        check_freshness(&mut c.problems, &manifest, &manifest_sha256, seen);
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
        signer,
    })
}

/// Not older than the last bundle seen (rollback), and following it.
fn check_freshness(
    problems: &mut Vec<Problem>,
    manifest: &Manifest,
    manifest_sha256: &str,
    seen: &BundleState,
) {
    if manifest_sha256 == seen.manifest_sha256 {
        return;
    }
    if manifest.covers_up_to <= seen.covers_up_to {
        problems.push(Problem {
            severity: Severity::Rollback,
            message: format!(
                "the bundle covers up to {}, not after the last bundle seen ({})",
                manifest.covers_up_to, seen.covers_up_to
            ),
        });
    } else if manifest.previous_manifest.as_deref() != Some(seen.manifest_sha256.as_str()) {
        problems.push(Problem::content(
            "the bundle does not follow the last bundle seen (previous-manifest-sha256)",
        ));
    }
}
