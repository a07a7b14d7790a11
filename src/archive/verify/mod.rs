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
//! `expires` (freeze); the transparency log it carries against its versions (`log.rs`).
//!
//! The bundle is untrusted input (issue 21): it is read through `BundleDir` (regular files
//! inside the directory only, every read capped), and nothing is believed before it is
//! vouched for, in this order: the MANIFEST's bytes by its signature (by a certificate with
//! the codeSigning usage, and the pinned signer if one is given — a MANIFEST whose signature
//! fails ends the check, since every size and digest in it could be an attacker's); then each
//! file by its digest in the MANIFEST (a file that fails is not opened again, so a record's
//! claims — a body's size, a Volgnummer — are used only once the record's digest held); a
//! gzip body is inflated up to its verified record's size and no further.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bundle::{ArchivedVersion, MANIFEST, MANIFEST_SIGNATURE};
use super::manifest::{MAX_MANIFEST_BYTES, Manifest};
use super::untrusted::BundleDir;
use crate::domain::ListKind;
use crate::signing::{SignerIdentity, SignerPolicy, hex, verify_detached};
pub(in crate::archive) use checker::BodyCache;
use checker::Checker;

mod checker;
mod log;
mod recovery;

pub use log::LoggedUpTo;

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
    /// How far the transparency log of the bundles seen reaches (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LoggedUpTo>,
}

/// Whom the verifier trusts: the CA the signing certificate chains to, and which of its
/// certificates may sign.
#[derive(Debug, Clone)]
pub struct BundleTrust {
    pub anchors: Vec<CertificateDer<'static>>,
    pub signers: SignerPolicy,
    /// The transparency log's verifier key (`<name>+<id>+<key>`): a bundle's checkpoint must
    /// be signed by it. Without it, the checkpoint is believed as the MANIFEST vouches for it.
    pub log_key: Option<String>,
}

impl BundleTrust {
    /// Any certificate under `anchors` with the codeSigning usage.
    pub fn new(anchors: Vec<CertificateDer<'static>>) -> Self {
        Self {
            anchors,
            signers: SignerPolicy::default(),
            log_key: None,
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

/// Verifies the bundle in `dir` against `trust` and the last bundle seen (`state`), at `now`.
/// `Err` holds every problem found.
pub fn verify_bundle(
    dir: &std::path::Path,
    trust: &BundleTrust,
    state: Option<&BundleState>,
    now: DateTime<Utc>,
) -> Result<Verified, Vec<Problem>> {
    verify_bundle_at(dir, trust, state, Some(now), &mut BodyCache::default())
}

/// The same; without `now`, a bundle past its `expires` is no problem (a restore after a long
/// outage still has only the bundles it has). `bodies` may come from the bundle verified
/// before (a restore's): a body both hold is decompressed once.
pub(in crate::archive) fn verify_bundle_at(
    dir: &std::path::Path,
    trust: &BundleTrust,
    state: Option<&BundleState>,
    now: Option<DateTime<Utc>>,
    bodies: &mut BodyCache,
) -> Result<Verified, Vec<Problem>> {
    let bundle = BundleDir::new(dir);
    let signed = read_signed_manifest(&bundle, trust).map_err(|e| vec![Problem::content(e)])?;
    let SignedManifest {
        manifest,
        sha256: manifest_sha256,
        signer,
    } = signed;
    let mut c = Checker::new(bundle, trust, bodies);
    c.check_files(&manifest);
    let by_list = c.read_records(&manifest);
    let restores = c.check_recovery(&manifest);

    // The same bundle verified again with the state it left: it follows nothing new.
    let follows = state.filter(|s| s.manifest_sha256 != manifest_sha256);
    let versions = c.check_lists(&manifest, &by_list, follows, &restores);
    let log = c.check_log(&manifest, &by_list, follows, trust.log_key.as_deref());
    if let Some(seen) = state {
        check_freshness(&mut c.problems, &manifest, &manifest_sha256, seen);
    }
    if now.is_some_and(|now| now > manifest.expires) {
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
    Ok(Verified {
        state: BundleState::after(state, manifest_sha256, &manifest, &by_list, log),
        manifest,
        versions,
        signer,
    })
}

impl BundleState {
    /// What an auditor remembers after `manifest` verified: the last version of every list
    /// seen so far.
    fn after(
        before: Option<&BundleState>,
        manifest_sha256: String,
        manifest: &Manifest,
        by_list: &BTreeMap<ListKind, Vec<ArchivedVersion>>,
        log: Option<LoggedUpTo>,
    ) -> Self {
        let mut lists = before.map(|s| s.lists.clone()).unwrap_or_default();
        for (list, found) in by_list {
            if let Some(last) = found.last() {
                lists.insert(*list, (last.volgnummer, last.sha256.clone()));
            }
        }
        BundleState {
            manifest_sha256,
            covers_up_to: manifest.covers_up_to,
            lists,
            log,
        }
    }
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
