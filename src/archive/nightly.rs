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

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::ArchiveError;
use super::export::{ExportRequest, ExportSummary, Exporter};
use crate::calendar::{local_date, start_of};

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
