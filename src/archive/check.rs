//! The archive check (`stelselnode archive check`, and daily in `serve`): every stored
//! version is read back, its bytes hashed against its record, its signature verified (when a
//! CA is configured) and the chain followed by the rule the offline verifier applies to a
//! bundle (`chain.rs`: Volgnummers, SHA-256s, validity windows). A damaged old version
//! is an alert (`archive_check_problems`), not an outage: readiness does not depend on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::chain::chain_problems;
use crate::clock::Clock;
use crate::domain::{ListKind, VersionRecord};
use crate::publication::assemble;
use crate::signing::verify_signature_of_digest;
use crate::storage::{StorageError, VersionStore};

const INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The first check waits this long after start, so a restart does not read the whole archive
/// while the node warms up.
const FIRST_RUN_DELAY: std::time::Duration = std::time::Duration::from_secs(600);

/// What one check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub versions: usize,
    pub problems: Vec<String>,
}

pub struct ArchiveCheck {
    storage: Arc<dyn VersionStore>,
    clock: Arc<dyn Clock>,
    /// The CA the signing certificate chains to; without it signatures are not checked.
    ca: Vec<CertificateDer<'static>>,
    /// The last run's problem count (-1: not run yet) and when it finished (Unix seconds).
    pub last_problems: AtomicI64,
    pub last_run: AtomicI64,
}

impl ArchiveCheck {
    pub fn new(
        storage: Arc<dyn VersionStore>,
        clock: Arc<dyn Clock>,
        ca: Vec<CertificateDer<'static>>,
    ) -> Self {
        Self {
            storage,
            clock,
            ca,
            last_problems: AtomicI64::new(-1),
            last_run: AtomicI64::new(0),
        }
    }

    /// What an earlier bundle must be signed by: the configured CA, if there is one.
    pub fn trust(&self) -> Option<super::BundleTrust> {
        (!self.ca.is_empty()).then(|| super::BundleTrust::new(self.ca.clone()))
    }

    /// Checks every stored version, one at a time.
    pub async fn run(&self) -> Result<CheckReport, StorageError> {
        let mut report = CheckReport::default();
        let restores = self.storage.restores().await?;
        for list in ListKind::ALL {
            let versions = self.storage.versions(list).await?;
            report.versions += versions.len();
            report
                .problems
                .extend(chain_problems(list, &versions, None, &restores));
            for record in &versions {
                if record.purged_at.is_none() {
                    let name = format!("{list} version {}", record.volgnummer);
                    self.check_bytes(record, &name, &mut report.problems)
                        .await?;
                }
            }
        }
        let now = self.clock.now();
        self.last_problems
            .store(report.problems.len() as i64, Ordering::Relaxed);
        self.last_run.store(now.timestamp(), Ordering::Relaxed);
        for problem in &report.problems {
            tracing::error!(%problem, "archive check");
        }
        Ok(report)
    }

    async fn check_bytes(
        &self,
        record: &VersionRecord,
        name: &str,
        problems: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let Some(stored) = self.storage.version(record.list, record.volgnummer).await? else {
            problems.push(format!("{name}: disappeared during the check"));
            return Ok(());
        };
        let bytes = match assemble(&stored) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                return Ok(());
            }
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if crate::signing::hex(&digest) != record.sha256 || bytes.len() as i64 != record.size_bytes
        {
            problems.push(format!("{name}: its bytes do not match its SHA-256"));
            return Ok(());
        }
        if !self.ca.is_empty() {
            let signed_at: DateTime<Utc> = record.tijdstempel.instant();
            if let Err(e) =
                verify_signature_of_digest(&stored.signature, &digest, &self.ca, signed_at)
            {
                problems.push(format!("{name}: its signature does not verify: {e}"));
            }
        }
        Ok(())
    }

    /// Runs the check daily until the node stops.
    pub async fn run_schedule(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(FIRST_RUN_DELAY) => {}
            _ = shutdown.changed() => return,
        }
        loop {
            if let Err(e) = self.run().await {
                tracing::warn!(error = %e, "the archive check could not run; trying again tomorrow");
            }
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
