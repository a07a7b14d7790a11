//! The export of a period's versions into a bundle (`stelselnode archive export`).
//!
//! One version at a time is read from the database and written out, so memory holds at most
//! one stored version (its header, compressed body and signature) however long the period;
//! then the period's mutations and audit records and the working state (one list's entries
//! are about the size of its version).
//! Everything in the bundle is a function of the database and the period — no wall-clock
//! time — so exporting the same period twice gives the same files (the manifest signature
//! aside where the key is ECDSA, whose signatures differ each time).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::ArchiveError;
use super::bundle::{
    AUDIT, ArchivedVersion, LOG_CHECKPOINT, LOG_LEAVES, MANIFEST, MANIFEST_SIGNATURE, MUTATIONS,
    SLA_REPORT, STATE, version_path,
};
use super::lines::gzip_lines;
use super::manifest::{CURRENT_FORMAT, Manifest, ManifestFile};
use super::untrusted::BundleDir;
use super::verify::{BundleTrust, read_manifest_checked_by, read_signed_manifest};
use crate::calendar::local_date;
use crate::domain::ListKind;
use crate::signing::{SignerIdentity, SigningKey, hex, sign_detached, verify_detached_by};
use crate::sla::{SlaReport, SlaService};
use crate::storage::Storage;
use crate::transparency::{CheckpointOf, NoCheckpoint, TransparencyLog};

/// A verifier refuses a bundle this long after the instant it covers up to: a nightly export
/// should have replaced it by then (one night missed is tolerated).
pub const BUNDLE_LIFETIME: Duration = Duration::hours(48);

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// A directory that does not exist yet (or is an empty directory, not a link).
    pub out: PathBuf,
    /// From this instant (default: where `previous` ends, or the first version).
    pub from: Option<DateTime<Utc>>,
    /// Up to this instant, not included.
    pub to: DateTime<Utc>,
    /// The bundle this one follows: its manifest digest is chained, its end is our start.
    pub previous: Option<PathBuf>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub versions: usize,
    pub bodies: usize,
    pub bytes: u64,
    pub manifest_sha256: String,
}

/// Writes files into a directory, keeping each one's digest and size for the manifest.
struct BundleWriter {
    dir: PathBuf,
    files: BTreeMap<String, ManifestFile>,
}

impl BundleWriter {
    fn write(&mut self, path: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        let target = self.dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(ArchiveError::io(parent))?;
        }
        let mut file = std::fs::File::create(&target).map_err(ArchiveError::io(&target))?;
        file.write_all(bytes).map_err(ArchiveError::io(&target))?;
        file.sync_all().map_err(ArchiveError::io(&target))?;
        self.files.insert(
            path.to_owned(),
            ManifestFile {
                path: path.to_owned(),
                sha256: hex(&Sha256::digest(bytes)),
                size: bytes.len() as u64,
            },
        );
        Ok(())
    }
}

/// The directory a bundle is written into: new, beside the target, made by this run (so
/// removing it on failure can never remove anything else), renamed onto the target when the
/// bundle is complete.
struct PartialDir {
    path: PathBuf,
    done: bool,
}

impl PartialDir {
    fn beside(out: &Path) -> Result<Self, ArchiveError> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                ArchiveError::Invalid(format!("{} names no directory", out.display()))
            })?;
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random)
            .map_err(|_| ArchiveError::Invalid("no randomness for a temporary name".into()))?;
        let path = parent.join(format!(".{name}.{}.partial", hex(&random)));
        // create_dir, not create_dir_all: it fails if anything is there already.
        std::fs::create_dir(&path).map_err(ArchiveError::io(&path))?;
        Ok(Self { path, done: false })
    }

    /// Renames the complete bundle onto `out`, which must still be absent or an empty
    /// directory (rename(2) replaces nothing else).
    fn finish(mut self, out: &Path) -> Result<(), ArchiveError> {
        std::fs::rename(&self.path, out).map_err(ArchiveError::io(out))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `out` may receive a bundle: absent, or an empty directory that is not a symbolic link.
fn check_target(out: &Path) -> Result<(), ArchiveError> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ArchiveError::io(out)(e)),
        Ok(m) if m.file_type().is_dir() => {
            let empty = std::fs::read_dir(out)
                .map_err(ArchiveError::io(out))?
                .next()
                .is_none();
            match empty {
                true => Ok(()),
                false => Err(ArchiveError::Invalid(format!(
                    "{} exists and is not empty",
                    out.display()
                ))),
            }
        }
        Ok(_) => Err(ArchiveError::Invalid(format!(
            "{} exists and is not a directory (a symbolic link is not followed)",
            out.display()
        ))),
    }
}

pub struct Exporter<'a> {
    pub storage: &'a dyn Storage,
    pub key: &'a SigningKey,
    /// Adds the period's SLA report.
    pub sla: &'a SlaService,
    /// Who may have signed the bundle an export follows: the CA and signers an auditor
    /// trusts (`archive.ca_file`), or, without one, this node's own signing certificate.
    pub trust: Option<&'a BundleTrust>,
    /// The transparency log, whose leaves and checkpoint the bundle carries.
    pub log: &'a TransparencyLog,
}

impl Exporter<'_> {
    /// The MANIFEST of the earlier bundle in `dir` and its digest, once its signature held.
    pub fn read_earlier(&self, dir: &Path) -> Result<(Manifest, String), ArchiveError> {
        let bundle = BundleDir::new(dir);
        let signed = match self.trust {
            Some(trust) => read_signed_manifest(&bundle, trust),
            None => {
                let own = self.key.chain().first().ok_or_else(|| {
                    ArchiveError::Invalid("the signing key has no certificate".into())
                })?;
                read_manifest_checked_by(&bundle, |signature, digest, _| {
                    verify_detached_by(signature, MANIFEST, digest, own)
                        .map_err(|e| e.to_string())?;
                    SignerIdentity::of(own)
                })
            }
        };
        let signed =
            signed.map_err(|e| ArchiveError::Invalid(format!("{}: {e}", dir.display())))?;
        Ok((signed.manifest, signed.sha256))
    }

    /// Exports the versions published in the period; `progress(done, total)` is called as
    /// versions are written.
    pub async fn export(
        &self,
        request: &ExportRequest,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<ExportSummary, ArchiveError> {
        let previous = request
            .previous
            .as_deref()
            .map(|dir| self.read_earlier(dir))
            .transpose()?;
        let from = match (&previous, request.from) {
            (Some((p, _)), Some(from)) if from != p.covers_up_to => {
                return Err(ArchiveError::Invalid(format!(
                    "the period starts at {from}, but the previous bundle ends at {}",
                    p.covers_up_to
                )));
            }
            (Some((p, _)), _) => Some(p.covers_up_to),
            (None, from) => from,
        };
        let to = request.to;
        if from.is_some_and(|from| from >= to) {
            return Err(ArchiveError::Invalid("the period is empty".into()));
        }
        check_target(&request.out)?;
        let partial = PartialDir::beside(&request.out)?;
        let mut writer = BundleWriter {
            dir: partial.path.clone(),
            files: BTreeMap::new(),
        };

        let in_period = |at: DateTime<Utc>| from.is_none_or(|from| at >= from) && at < to;
        let mut chosen = Vec::new();
        for list in ListKind::ALL {
            for record in self.storage.versions(list).await? {
                if in_period(record.tijdstempel.instant()) {
                    chosen.push(record);
                }
            }
        }
        let mut volgnummers: BTreeMap<ListKind, Option<(i64, i64)>> =
            ListKind::ALL.into_iter().map(|l| (l, None)).collect();
        let mut bodies = BTreeSet::new();
        for (done, record) in chosen.iter().enumerate() {
            let stored = self
                .storage
                .version(record.list, record.volgnummer)
                .await?
                .ok_or_else(|| {
                    ArchiveError::Invalid(format!(
                        "{} version {} disappeared during the export",
                        record.list, record.volgnummer
                    ))
                })?;
            let archived = ArchivedVersion::of(&stored.record, to);
            writer.write(&archived.header, &stored.header)?;
            writer.write(&archived.signature, &stored.signature)?;
            if let Some(body) = &archived.body
                && bodies.insert(body.clone())
            {
                writer.write(body, &stored.body_gzip)?;
            }
            let json = serde_json::to_vec_pretty(&archived).expect("a record serialises");
            writer.write(
                &version_path(record.list, archived.volgnummer, "json"),
                &json,
            )?;
            let range = volgnummers.entry(record.list).or_default();
            let n = archived.volgnummer;
            *range = Some(range.map_or((n, n), |(first, last)| (first.min(n), last.max(n))));
            progress(done + 1, chosen.len());
        }

        self.sla
            .settle_backlog()
            .await
            .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        let since = from.unwrap_or(DateTime::UNIX_EPOCH);
        let completed = self.storage.completed_mutations(since, to).await?;
        let report_from = from
            .or_else(|| chosen.iter().map(|r| r.tijdstempel.instant()).min())
            .unwrap_or(to);
        let report = SlaReport::of(
            local_date(report_from),
            local_date(to - Duration::microseconds(1)),
            &completed,
        );
        let report = serde_json::to_vec_pretty(&report).expect("a report serialises");
        writer.write(SLA_REPORT, &report)?;

        // What a restore needs besides the versions. Mutations and the working state as they
        // stand now (a later bundle repeats what changed after), the audit log of the period.
        let mutations = self.storage.mutations_changed_since(from).await?;
        writer.write(MUTATIONS, &gzip_lines(&mutations))?;
        drop(mutations);
        let audit = self.storage.audit_rows(from, to).await?;
        writer.write(AUDIT, &gzip_lines(&audit))?;
        drop(audit);
        let state = self.storage.state_lines().await?;
        writer.write(STATE, &gzip_lines(&state))?;
        drop(state);

        self.write_log(&mut writer, to).await?;

        let manifest = Manifest {
            format: CURRENT_FORMAT,
            covers_from: from,
            covers_up_to: to,
            expires: to + BUNDLE_LIFETIME,
            previous_manifest: previous.map(|(_, digest)| digest),
            volgnummers,
            files: writer.files.values().cloned().collect(),
        };
        let text = manifest.render();
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let bytes = manifest.files.iter().map(|f| f.size).sum();
        writer.write(MANIFEST, text.as_bytes())?;
        let signature = sign_detached(self.key, MANIFEST, &digest)
            .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        writer.write(MANIFEST_SIGNATURE, &signature)?;
        partial.finish(&request.out)?;
        Ok(ExportSummary {
            versions: chosen.len(),
            bodies: bodies.len(),
            bytes,
            manifest_sha256: hex(&digest),
        })
    }

    /// The transparency log up to the last leaf published before `to`, and its checkpoint.
    /// A node whose log disagrees with a checkpoint it signed before exports nothing: the
    /// archive must not carry a history other than the one consumers were shown.
    async fn write_log(
        &self,
        writer: &mut BundleWriter,
        to: DateTime<Utc>,
    ) -> Result<(), ArchiveError> {
        self.log.catch_up(self.storage).await?;
        let mut leaves = self
            .log
            .leaves(self.log.size())
            .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        let mut size = leaves.len();
        for (index, leaf) in leaves.iter().enumerate() {
            let content = leaf.content().map_err(|e| {
                ArchiveError::Storage(crate::storage::StorageError::Corrupt(format!(
                    "the transparency log's leaf {index}: {e}"
                )))
            })?;
            if content.valid_from < to {
                size = index + 1;
            }
        }
        leaves.truncate(size);
        let lines: Vec<&str> = leaves
            .iter()
            .map(|leaf| std::str::from_utf8(leaf.as_bytes()).expect("a parsed leaf is UTF-8"))
            .collect();
        writer.write(LOG_LEAVES, &gzip_lines(&lines))?;
        match self.log.checkpoint_of(size as u64) {
            Ok(checkpoint) => writer.write(LOG_CHECKPOINT, &checkpoint),
            Err(CheckpointOf::Refused(NoCheckpoint::NoKey)) => Ok(()),
            Err(e) => Err(ArchiveError::Invalid(format!(
                "no checkpoint for the bundle: {e}"
            ))),
        }
    }
}
