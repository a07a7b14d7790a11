//! The nightly export (`stelselnode archive nightly`, the systemd timer in `deploy/`, or
//! `serve` with `archive.nightly_dir`): one bundle per run into a directory of bundles named
//! by the last day they cover, each following the newest one there, and only the newest
//! `keep` kept. A run with nothing new to cover does nothing, so running it more often than
//! nightly is harmless.
//!
//! Several replicas on one PostgreSQL: give `archive.nightly_dir` to one of them only (or run
//! the timer on one host). Two runs into the same directory cannot both succeed: a bundle is
//! written beside its name and renamed into place only if nothing is there yet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio::sync::watch;

use super::export::{ExportRequest, ExportSummary, Exporter};
use super::{ArchiveError, BundleTrust};
use crate::calendar::{local_date, start_of};
use crate::clock::Clock;
use crate::publication::Publisher;
use crate::sla::SlaService;
use crate::storage::Storage;
use crate::transparency::TransparencyLog;

/// How often `serve` looks whether a midnight passed since the newest bundle.
const NIGHTLY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(900);

/// Bundles as a service: what every export is made with, for the CLI's `archive export` and
/// `archive nightly` and for `serve`'s nightly schedule alike. It signs with the key the
/// publisher signs with now, so a key SIGHUP put in place signs the next bundle.
pub struct ArchiveExports {
    storage: Arc<dyn Storage>,
    publisher: Arc<Publisher>,
    sla: Arc<SlaService>,
    /// Whose earlier bundle an export follows (`archive.ca_file`; without it, this node's
    /// own signing certificate).
    trust: Option<BundleTrust>,
    clock: Arc<dyn Clock>,
    log: Arc<TransparencyLog>,
}

impl ArchiveExports {
    pub fn new(
        storage: Arc<dyn Storage>,
        publisher: Arc<Publisher>,
        sla: Arc<SlaService>,
        trust: Option<BundleTrust>,
        clock: Arc<dyn Clock>,
        log: Arc<TransparencyLog>,
    ) -> Self {
        Self {
            storage,
            publisher,
            sla,
            trust,
            clock,
            log,
        }
    }

    /// Writes the bundle `request` asks for; `progress` hears (done, total) versions.
    pub async fn export(
        &self,
        request: &ExportRequest,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<ExportSummary, ArchiveError> {
        let key = self.key()?;
        self.exporter(&key).export(request, progress).await
    }

    /// `export_nightly` into `dir`, keeping the newest `keep` bundles.
    pub async fn nightly(
        &self,
        dir: &Path,
        keep: usize,
    ) -> Result<Option<ExportSummary>, ArchiveError> {
        let key = self.key()?;
        export_nightly(&self.exporter(&key), dir, keep, self.clock.now()).await
    }

    /// `serve` with `archive.nightly_dir`: looks every 15 minutes whether a midnight passed
    /// since the newest bundle; failures are logged and tried again.
    pub async fn run_nightly(
        self: Arc<Self>,
        dir: PathBuf,
        keep: usize,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            match self.nightly(&dir, keep).await {
                Ok(Some(summary)) => tracing::info!(
                    versions = summary.versions,
                    bytes = summary.bytes,
                    manifest = %summary.manifest_sha256,
                    "nightly archive bundle written"
                ),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "the nightly archive export failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(NIGHTLY_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn key(&self) -> Result<Arc<crate::signing::SigningKey>, ArchiveError> {
        self.publisher
            .signing_key()
            .map_err(|e| ArchiveError::Invalid(e.to_string()))
    }

    fn exporter<'a>(&'a self, key: &'a crate::signing::SigningKey) -> Exporter<'a> {
        Exporter {
            storage: self.storage.as_ref(),
            key,
            sla: &self.sla,
            trust: self.trust.as_ref(),
            log: &self.log,
        }
    }
}

/// The bundles in `dir`, oldest first: subdirectories named `YYYY-MM-DD` with a MANIFEST.
pub fn bundles(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(ArchiveError::io(dir))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").is_ok())
                && path.join(super::MANIFEST).is_file()
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Exports what the newest bundle in `dir` does not cover yet, up to the last midnight
/// (Europe/Amsterdam) before `now`, then keeps only the newest `keep` bundles (at least one).
///
/// The newest bundle is believed only once its signature holds (`Exporter::read_earlier`):
/// a stray or forged directory named for a day far ahead would otherwise stop every export
/// ("up to date") for good. One that claims to cover more than has happened is refused too.
pub async fn export_nightly(
    exporter: &Exporter<'_>,
    dir: &Path,
    keep: usize,
    now: DateTime<Utc>,
) -> Result<Option<ExportSummary>, ArchiveError> {
    if keep == 0 {
        return Err(ArchiveError::Invalid(
            "keep at least one bundle: the next export follows the newest".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(ArchiveError::io(dir))?;
    let existing = bundles(dir)?;
    let to = start_of(local_date(now));
    let previous = existing.last().cloned();
    if let Some(newest) = &previous {
        let (manifest, _) = exporter.read_earlier(newest)?;
        if manifest.covers_up_to > to {
            return Err(ArchiveError::Invalid(format!(
                "{} claims to cover up to {}, after the last midnight ({to}): move it away",
                newest.display(),
                manifest.covers_up_to
            )));
        }
        if manifest.covers_up_to == to {
            return Ok(None);
        }
    }
    let name = local_date(to - Duration::microseconds(1)).to_string();
    let request = ExportRequest {
        out: dir.join(name),
        from: None,
        to,
        previous,
    };
    let summary = exporter.export(&request, &mut |_, _| {}).await?;
    let all = bundles(dir)?;
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(old).map_err(ArchiveError::io(old))?;
    }
    Ok(Some(summary))
}
