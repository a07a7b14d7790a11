//! What a restore will write, decided before anything is: every bundle verified, in chain
//! order, by the same code as `archive verify`; every consumer copy checked against the CA
//! and against the version it must follow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::archive::BundleTrust;
use crate::archive::manifest::Manifest;
use crate::archive::untrusted::BundleDir;
use crate::archive::verify::{BodyCache, BundleState, read_signed_manifest, verify_bundle_at};
use crate::domain::{ListKind, VersionRecord};
use crate::publication::{gzip, header_len};
use crate::signing::{VersionProperties, hex, sha256_hex, verify_signature_of_digest};
use crate::storage::{RestoredVersion, StoredVersion};
use crate::xml::parse_list;

/// The largest consumer copy read: far above the largest list.
const MAX_COPY: u64 = 512 * 1024 * 1024;
const MAX_SIGNATURE: u64 = 1024 * 1024;

/// A list as a consumer node holds it: the file and its detached signature.
#[derive(Debug, Clone)]
pub struct ConsumerCopy {
    pub list_file: PathBuf,
    pub signature: PathBuf,
}

/// A bundle that verified, with its MANIFEST (whose digests the writing checks again).
pub(super) struct VerifiedBundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Everything a restore will write, every piece verified.
pub(super) struct Plan {
    pub bundles: Vec<VerifiedBundle>,
    /// The consumer copies to add after the bundles' versions.
    pub copies: Adoption,
    /// Per list, the last version recovered: Volgnummer and SHA-256.
    pub last: BTreeMap<ListKind, (i64, String)>,
}

/// A consumer copy that verified and follows the list's last recovered version.
pub(super) struct AdoptedCopy {
    bytes: Vec<u8>,
    signature: Vec<u8>,
    /// What its signature signs about it.
    properties: VersionProperties,
    sha256: String,
}

/// The consumer copies a restore adds, per list in Volgnummer order, and how many copies were
/// of versions the bundles held already.
pub(super) struct Adoption {
    pub adopted: BTreeMap<ListKind, Vec<AdoptedCopy>>,
    pub already_held: usize,
}

/// Verifies every bundle in chain order: each names the one before it; the chain of each list
/// runs on across them. The oldest may follow bundles no longer kept (`archive nightly
/// --keep`): what they held is not restored, and the report says from when on it is. `Err`:
/// every problem, naming its bundle.
pub(super) fn verify_bundles(
    dirs: &[PathBuf],
    trust: &BundleTrust,
) -> Result<(Vec<VerifiedBundle>, Option<BundleState>), Vec<String>> {
    if dirs.is_empty() {
        return Err(vec!["no bundle to restore from".into()]);
    }
    // Ordered by what their signed MANIFESTs say they cover.
    let mut ordered = Vec::new();
    let mut problems = Vec::new();
    for dir in dirs {
        match read_signed_manifest(&BundleDir::new(dir), trust) {
            Ok(signed) => ordered.push((signed.manifest.covers_up_to, dir.clone())),
            Err(e) => problems.push(format!("{}: {e}", dir.display())),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    ordered.sort();
    let mut state: Option<BundleState> = None;
    let mut verified = Vec::new();
    let mut bodies = BodyCache::default();
    for (_, dir) in ordered {
        match verify_bundle_at(&dir, trust, state.as_ref(), None, &mut bodies) {
            Ok(v) => {
                state = Some(v.state);
                verified.push(VerifiedBundle {
                    dir,
                    manifest: v.manifest,
                });
            }
            Err(found) => {
                problems.extend(
                    found
                        .into_iter()
                        .map(|p| format!("{}: {}", dir.display(), p.message)),
                );
                // Later bundles cannot be checked against one that failed.
                break;
            }
        }
    }
    match problems.is_empty() {
        true => Ok((verified, state)),
        false => Err(problems),
    }
}

fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match bytes.len() as u64 > cap {
        true => Err(format!("{}: larger than any list", path.display())),
        false => Ok(bytes),
    }
}

/// Checks consumer copies: each signed by a certificate under the CA (valid at `now`), its
/// document saying what its signature says, and, per list in Volgnummer order, following
/// the last version recovered (Volgnummer + 1, naming its SHA-256). A copy of the last
/// recovered version itself is no problem.
pub(super) fn check_copies(
    copies: &[ConsumerCopy],
    trust: &BundleTrust,
    now: DateTime<Utc>,
    last: &mut BTreeMap<ListKind, (i64, String)>,
) -> Result<Adoption, Vec<String>> {
    let mut problems = Vec::new();
    // First each signature, over the file's digest: a copy of a version the bundles hold
    // (the ZAL: tens of megabytes) is never held in memory.
    let mut signed: BTreeMap<ListKind, Vec<SignedCopy>> = BTreeMap::new();
    for copy in copies {
        match SignedCopy::check(copy, trust, now) {
            Ok(checked) => signed.entry(checked.list()).or_default().push(checked),
            Err(e) => problems.push(e),
        }
    }
    let mut adopted: BTreeMap<ListKind, Vec<AdoptedCopy>> = BTreeMap::new();
    let mut already_held = 0;
    for (list, mut copies) in signed {
        copies.sort_by_key(|c| c.properties.volgnummer);
        for copy in copies {
            let n = copy.properties.volgnummer.get();
            let held = last.get(&list).cloned();
            match &held {
                Some((last_n, last_sha)) if n == *last_n && copy.sha256 == *last_sha => {
                    already_held += 1;
                    continue;
                }
                Some((last_n, _)) if n <= *last_n => {
                    problems.push(format!(
                        "{list} Volgnummer {n}: the bundles hold up to {last_n} already, and \
                         this copy is not their last version"
                    ));
                    continue;
                }
                _ => {}
            }
            let previous = copy.properties.previous_sha256.as_deref();
            let follows = match &held {
                Some((last_n, last_sha)) => n == last_n + 1 && previous == Some(last_sha.as_str()),
                None => n == 1 && previous.is_none(),
            };
            if !follows {
                let after = held.map_or("nothing".to_owned(), |(n, _)| format!("Volgnummer {n}"));
                problems.push(format!(
                    "{list} Volgnummer {n}: does not follow {after} (each copy must follow the \
                     last version recovered, with its SHA-256 as predecessor)"
                ));
                continue;
            }
            match copy.read() {
                Ok(read) => {
                    last.insert(list, (n, read.sha256.clone()));
                    adopted.entry(list).or_default().push(read);
                }
                Err(e) => problems.push(e),
            }
        }
    }
    match problems.is_empty() {
        true => Ok(Adoption {
            adopted,
            already_held,
        }),
        false => Err(problems),
    }
}

/// A consumer copy whose signature held over its file's digest.
struct SignedCopy {
    copy: ConsumerCopy,
    signature: Vec<u8>,
    properties: VersionProperties,
    sha256: String,
}

impl SignedCopy {
    fn check(copy: &ConsumerCopy, trust: &BundleTrust, now: DateTime<Utc>) -> Result<Self, String> {
        let name = copy.list_file.display();
        let signature = read_bounded(&copy.signature, MAX_SIGNATURE)?;
        let digest = file_sha256(&copy.list_file)?;
        let check = verify_signature_of_digest(&signature, &digest, &trust.anchors, now)
            .map_err(|e| e.to_string())
            .and_then(|check| trust.signers.check(&check.signer).map(|_| check))
            .map_err(|e| format!("{name}: its signature does not verify: {e}"))?;
        Ok(Self {
            copy: copy.clone(),
            signature,
            properties: check.properties,
            sha256: check.list_sha256,
        })
    }

    fn list(&self) -> ListKind {
        self.properties.list
    }

    /// The copy's bytes, still those signed, saying what the signature says.
    fn read(self) -> Result<AdoptedCopy, String> {
        let name = self.copy.list_file.display().to_string();
        let bytes = read_bounded(&self.copy.list_file, MAX_COPY)?;
        if sha256_hex(&bytes) != self.sha256 {
            return Err(format!("{name} changed while it was checked"));
        }
        let p = self.properties;
        let says_the_same = parse_list(&bytes, p.list)
            .is_ok_and(|l| l.volgnummer == p.volgnummer && l.tijdstempel == p.tijdstempel);
        if !says_the_same || !bytes.windows(13).any(|w| w == b"</Volgnummer>") {
            return Err(format!(
                "{name}: the list does not match its signed properties"
            ));
        }
        Ok(AdoptedCopy {
            bytes,
            signature: self.signature,
            properties: p,
            sha256: self.sha256,
        })
    }
}

/// The SHA-256 of a file, read as it streams by (at most `MAX_COPY` bytes).
fn file_sha256(path: &Path) -> Result<[u8; 32], String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let copied = std::io::copy(&mut file.take(MAX_COPY + 1), &mut hasher)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match copied > MAX_COPY {
        true => Err(format!("{}: larger than any list", path.display())),
        false => Ok(hasher.finalize().into()),
    }
}

impl AdoptedCopy {
    /// The copy as a stored version, split as a publication splits it; a heartbeat when its
    /// body is the one before's.
    pub(super) fn stored(self, body_before: Option<&str>) -> RestoredVersion {
        let p = self.properties;
        let split = header_len(&self.bytes);
        let (header, body) = self.bytes.split_at(split);
        let body_sha256 = hex(&Sha256::digest(body));
        RestoredVersion {
            body_size: Some(body.len() as i64),
            published_by: "archive restore (consumer copy)".into(),
            version: StoredVersion {
                record: VersionRecord {
                    list: p.list,
                    volgnummer: p.volgnummer,
                    tijdstempel: p.tijdstempel,
                    valid_from: p.valid_from.instant(),
                    expires_at: p.expires_at.instant(),
                    grace_seconds: i64::try_from(p.grace_seconds).unwrap_or(i64::MAX),
                    superseded_at: None,
                    grace_until: None,
                    sha256: self.sha256,
                    previous_sha256: p.previous_sha256,
                    heartbeat: body_before == Some(body_sha256.as_str()),
                    size_bytes: self.bytes.len() as i64,
                    body_sha256,
                    purged_at: None,
                },
                header: header.to_vec(),
                body_gzip: gzip(body),
                signature: self.signature,
            },
        }
    }
}
