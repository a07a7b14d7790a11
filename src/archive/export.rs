//! The export of a period's versions into a bundle (`stelselnode archive export`).
//!
//! One version at a time is read from the database and written out, so memory holds at most
//! one stored version (its header, compressed body and signature) however long the period.
//! Everything in the bundle is a function of the database and the period — no wall-clock
//! time — so exporting the same period twice gives the same files (the manifest signature
//! aside where the key is ECDSA, whose signatures differ each time).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::ArchiveError;
use super::bundle::{ArchivedVersion, MANIFEST, MANIFEST_SIGNATURE, SLA_REPORT, version_path};
use super::manifest::{Manifest, ManifestFile};
use crate::calendar::local_date;
use crate::domain::ListKind;
use crate::signing::{SigningKey, hex, sign_detached};
use crate::sla::{SlaReport, SlaService};
use crate::storage::Storage;

/// A verifier refuses a bundle this long after the instant it covers up to: a nightly export
/// should have replaced it by then (one night missed is tolerated).
pub const BUNDLE_LIFETIME: Duration = Duration::hours(48);

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// A directory that does not exist yet (or is empty).
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

/// The manifest of the bundle in `dir`, and its digest.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, String), ArchiveError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(ArchiveError::io(&path))?;
    let manifest = Manifest::parse(&text).map_err(ArchiveError::Invalid)?;
    Ok((manifest, hex(&Sha256::digest(text.as_bytes()))))
}

pub struct Exporter<'a> {
    pub storage: &'a dyn Storage,
    pub key: &'a SigningKey,
    /// Adds the period's SLA report.
    pub sla: &'a SlaService,
}

impl Exporter<'_> {
    /// Exports the versions published in the period; `progress(done, total)` is called as
    /// versions are written.
    pub async fn export(
        &self,
        request: &ExportRequest,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<ExportSummary, ArchiveError> {
        let previous = request.previous.as_deref().map(read_manifest).transpose()?;
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
        if request.out.exists()
            && std::fs::read_dir(&request.out)
                .map_err(ArchiveError::io(&request.out))?
                .next()
                .is_some()
        {
            return Err(ArchiveError::Invalid(format!(
                "{} exists and is not empty",
                request.out.display()
            )));
        }
        // Written beside the target and renamed at the end: a bundle is complete or absent.
        let partial = request.out.with_extension("partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(ArchiveError::io(&partial))?;
        }
        let mut writer = BundleWriter {
            dir: partial.clone(),
            files: BTreeMap::new(),
        };
        std::fs::create_dir_all(&partial).map_err(ArchiveError::io(&partial))?;

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

        let manifest = Manifest {
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
        if request.out.exists() {
            std::fs::remove_dir(&request.out).map_err(ArchiveError::io(&request.out))?;
        }
        std::fs::rename(&partial, &request.out).map_err(ArchiveError::io(&request.out))?;
        Ok(ExportSummary {
            versions: chosen.len(),
            bodies: bodies.len(),
            bytes,
            manifest_sha256: hex(&digest),
        })
    }
}
