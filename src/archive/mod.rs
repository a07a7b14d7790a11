//! The archive (SPEC §7, seed 003 rule 21): every published version, exported nightly as a
//! signed, self-describing bundle (`export.rs`, layout in `bundle.rs`) that a verifier checks
//! offline (`verify.rs`), nightly (`nightly.rs`); the check of every stored version
//! (`check.rs`); and retention (`retention.rs`): the audit log destroyed after
//! 12–15 months, versions' bytes purged after the archive retention.

mod bundle;
mod chain;
mod check;
mod export;
mod lines;
mod manifest;
mod nightly;
mod restore;
mod retention;
mod untrusted;
mod verify;

use std::path::Path;

pub use bundle::{ArchivedVersion, MANIFEST, MANIFEST_SIGNATURE, SLA_REPORT, version_path};
pub use check::{ArchiveCheck, CheckReport};
pub use export::{BUNDLE_LIFETIME, ExportRequest, ExportSummary, Exporter};
pub use manifest::{Manifest, ManifestFile};
pub use nightly::{ArchiveExports, bundles, export_nightly};
pub use restore::{
    ConsumerCopy, ListRestored, MIN_MARGIN, RestoreError, RestoreReport, RestoreRequest, Restorer,
};
pub use retention::Retention;
pub use verify::{BundleState, BundleTrust, Problem, Severity, Verified, verify_bundle};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// In words, once: the io error is not kept as a source, so a chain of causes does not
    /// print it twice.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ArchiveError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |error| ArchiveError::Io {
            path: path.display().to_string(),
            message: untrusted::words(&error),
        }
    }
}
