//! The composition root: every service of the node, built once from the configuration, the
//! storage and the clock, for every door — `serve` and `dev` (`server::Application`), the
//! command line, the tests and the benchmarks. A service gets what it needs here and
//! nowhere else: the signing key is read from its files in this module only (and again on
//! SIGHUP, through `signing_key`), the SLA policy is made once and shared.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::archive::{ArchiveCheck, ArchiveExports, BundleTrust, Retention};
use crate::audit_log::AuditLog;
use crate::clock::Clock;
use crate::config::{Config, SigningConfig};
use crate::leases::Leases;
use crate::mutations::{MutationWorkflow, WorkflowSettings};
use crate::publication::{Publisher, Settings};
use crate::signing::{SigningError, SigningKey};
use crate::sla::{NotifyError, SlaPolicy, SlaService};
use crate::storage::{Storage, StorageError};
use crate::transparency::{
    CheckpointKeyError, CheckpointSigner, TransparencyLog, WitnessConfigError, Witnesses,
};

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("archive.ca_file {file}: {message}")]
    ArchiveCa { file: String, message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    TransparencyKey(#[from] CheckpointKeyError),
    #[error(transparent)]
    Witnesses(#[from] WitnessConfigError),
}

/// The node's services, sharing one storage, clock and working-state cache.
pub struct Services {
    pub config: Arc<Config>,
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub publisher: Arc<Publisher>,
    pub workflow: Arc<MutationWorkflow>,
    pub sla: Arc<SlaService>,
    pub archive_check: Arc<ArchiveCheck>,
    pub exports: Arc<ArchiveExports>,
    pub retention: Arc<Retention>,
    pub audit: Arc<AuditLog>,
    /// This replica's leases on singleton work.
    pub leases: Arc<Leases>,
    /// The transparency log of every published version, as this node has caught up with it.
    pub transparency: Arc<TransparencyLog>,
}

impl Services {
    /// Builds every service over `storage` (already migrated). Reads the signing key and the
    /// archive CA named in `config`; a node without a signing key is built, and refuses to
    /// publish (`serve` requires one before it gets here).
    pub fn build(
        config: &Config,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServicesError> {
        let sla_policy = Arc::new(SlaPolicy::new(&config.sla));
        let sla = Arc::new(SlaService::new(
            storage.clone(),
            clock.clone(),
            sla_policy.clone(),
            config.notify.clone(),
        )?);
        let publisher = Arc::new(Publisher::new(
            storage.clone(),
            clock.clone(),
            Settings::from(&config.publication),
            signing_key(&config.signing)?,
        ));
        let workflow = Arc::new(MutationWorkflow::new(
            storage.clone(),
            publisher.clone(),
            clock.clone(),
            WorkflowSettings::new(&config.publication, sla_policy),
        ));
        let archive_ca = archive_ca(&config.archive.ca_file)?;
        let trust = (!archive_ca.is_empty()).then(|| BundleTrust::new(archive_ca.clone()));
        let transparency = Arc::new(TransparencyLog::new(
            checkpoint_signer(config)?,
            Witnesses::new(&config.transparency.witnesses)?,
        ));
        Ok(Self {
            archive_check: Arc::new(ArchiveCheck::new(
                storage.clone(),
                clock.clone(),
                archive_ca,
            )),
            exports: Arc::new(ArchiveExports::new(
                storage.clone(),
                publisher.clone(),
                sla.clone(),
                trust,
                clock.clone(),
                transparency.clone(),
            )),
            retention: Arc::new(Retention::new(
                storage.clone(),
                clock.clone(),
                config.retention.clone(),
            )),
            audit: Arc::new(AuditLog::new(storage.clone())),
            leases: Arc::new(Leases::new(
                storage.clone(),
                Leases::process_holder(),
                std::time::Duration::from_secs(config.server.lease_seconds),
            )),
            transparency,
            config: Arc::new(config.clone()),
            storage,
            clock,
            publisher,
            workflow,
            sla,
        })
    }

    /// Opens and migrates the database `config` names, then builds the services over it.
    pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, ServicesError> {
        let storage = crate::storage::connect(&config.database.url).await?;
        storage.migrate().await?;
        Self::build(config, storage, clock)
    }
}

/// The signing key `config` names: `None` when neither file is configured, an error when
/// only one is or a file cannot be read. The one place a signing key is read from disk
/// (at start, and on SIGHUP).
pub fn signing_key(config: &SigningConfig) -> Result<Option<SigningKey>, SigningError> {
    match (
        config.key_file.as_str(),
        config.certificate_chain_file.as_str(),
    ) {
        ("", "") => Ok(None),
        ("", _) | (_, "") => Err(SigningError::Key(
            "signing.key_file and signing.certificate_chain_file go together".into(),
        )),
        (key, chain) => SigningKey::load(
            key,
            Path::new(chain),
            std::time::Duration::from_secs(config.token_timeout_seconds),
        )
        .map(Some),
    }
}

/// The transparency log's checkpoint signer, when `transparency.key_file` names one (at
/// start, and on SIGHUP).
pub fn checkpoint_signer(config: &Config) -> Result<Option<CheckpointSigner>, CheckpointKeyError> {
    let transparency = &config.transparency;
    match transparency.key_file.as_str() {
        "" => Ok(None),
        key_file => CheckpointSigner::load(
            &transparency.origin,
            key_file,
            std::time::Duration::from_secs(config.signing.token_timeout_seconds),
        )
        .map(Some),
    }
}

/// The archive CA certificates (`archive.ca_file`; none when empty).
fn archive_ca(file: &str) -> Result<Vec<CertificateDer<'static>>, ServicesError> {
    if file.is_empty() {
        return Ok(Vec::new());
    }
    CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServicesError::ArchiveCa {
            file: file.to_owned(),
            message: e.to_string(),
        })
}
