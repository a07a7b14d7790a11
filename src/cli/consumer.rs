//! `stelselnode verify`: a fetched list checked as a consumer node checks it (signature,
//! validity window, rollback), without configuration or database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::{log_key, read_bounded, read_ca};
use crate::consumer::{ConsumerState, LogEvidence, check_in_log, verify_fetched};
use crate::domain::{IndexedVersion, VersionStatus};
use crate::transparency::{LogCheckError, WitnessKey, cosigned_by};

/// Exit status of the verifier for a valid version in its grace period.
const EXIT_GRACE: u8 = 3;
/// The version is not shown in the transparency log by a checkpoint signed with its key.
const EXIT_NOT_IN_LOG: u8 = 7;
/// The log's checkpoint is not consistent with the one kept in the state: a split view.
const EXIT_SPLIT_VIEW: u8 = 8;
/// Fewer witnesses than required cosigned the log's checkpoint.
const EXIT_UNWITNESSED: u8 = 9;

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[arg(long)]
    list_file: PathBuf,
    #[arg(long)]
    signature: PathBuf,
    /// The CA certificate(s) the signer must chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// JSON file with the last accepted Volgnummer per list; updated on success.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The node's version index of the list (JSON), to tell a version in grace.
    #[arg(long)]
    versions: Option<PathBuf>,
    /// The transparency log's verifier key (`<name>+<id>+<key>`, or a file holding it): the
    /// list must be in a checkpoint signed by it, consistent with the one kept in --state.
    #[arg(long, requires_all = ["checkpoint", "inclusion_proof", "versions"])]
    log_key: Option<String>,
    /// The log's signed checkpoint (`/log/checkpoint`).
    #[arg(long, requires = "log_key")]
    checkpoint: Option<PathBuf>,
    /// The list's inclusion proof in that checkpoint
    /// (`/log/proof/inclusion?index=<its log_index>&tree_size=<the checkpoint's size>`).
    #[arg(long, requires = "log_key")]
    inclusion_proof: Option<PathBuf>,
    /// Between the checkpoint kept in --state and this one, when their sizes differ
    /// (`/log/proof/consistency?from=<smaller>&tree_size=<larger>`).
    #[arg(long, requires = "log_key")]
    consistency_proof: Option<PathBuf>,
    /// A witness's verifier key (`<name>+<id>+<key>`, or a file holding it; repeatable): the
    /// checkpoint must carry the cosignatures of --witnesses-required of them.
    #[arg(long, requires = "log_key")]
    witness_key: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned (default: all of them).
    #[arg(long, requires = "witness_key")]
    witnesses_required: Option<usize>,
}

/// The largest list read (a ZAL of 10 000 Zorgaanbieders is about 43 MB).
const MAX_LIST_BYTES: u64 = 512 * 1024 * 1024;
/// The largest version index read.
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;
/// The largest signature, checkpoint or proof read.
const MAX_SMALL_BYTES: u64 = 1024 * 1024;

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let read = |path: &Path| read_bounded(path, MAX_SMALL_BYTES);
    let list_bytes = read_bounded(&args.list_file, MAX_LIST_BYTES)?;
    let signature = read(&args.signature)?;
    let anchors = read_ca(&args.ca)?;
    let state_file = args.state.as_deref();
    let mut state = match state_file {
        Some(path) => ConsumerState::load(path)
            .with_context(|| format!("cannot read state {}", path.display()))?,
        None => ConsumerState::default(),
    };
    let index: Option<Vec<IndexedVersion>> = match &args.versions {
        Some(path) => Some(
            serde_json::from_slice(&read_bounded(path, MAX_INDEX_BYTES)?)
                .context("the version index is not valid JSON")?,
        ),
        None => None,
    };
    match verify_fetched(
        &list_bytes,
        &signature,
        &anchors,
        Utc::now(),
        &state,
        index.as_deref(),
    ) {
        Ok(verdict) => {
            let p = &verdict.properties;
            if let Some(key) = &args.log_key {
                let key = log_key(key)?;
                let read_opt = |path: &Option<PathBuf>| path.as_deref().map(read).transpose();
                let (checkpoint, inclusion, consistency) = (
                    read_opt(&args.checkpoint)?.unwrap_or_default(),
                    read_opt(&args.inclusion_proof)?.unwrap_or_default(),
                    read_opt(&args.consistency_proof)?,
                );
                let evidence = LogEvidence {
                    verifier_key: &key,
                    checkpoint: &checkpoint,
                    inclusion_proof: &inclusion,
                    consistency_proof: consistency.as_deref(),
                };
                let witnesses = args
                    .witness_key
                    .iter()
                    .map(|key| Ok(WitnessKey::parse(&log_key(key)?)?))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let required = args.witnesses_required.unwrap_or(witnesses.len());
                let witnessed = match cosigned_by(&checkpoint, &witnesses) {
                    found if found < required => {
                        Err(LogCheckError::TooFewWitnesses { found, required })
                    }
                    _ => Ok(()),
                };
                let checked = witnessed.and_then(|()| {
                    check_in_log(&verdict, index.as_deref().unwrap_or(&[]), &evidence, &state)
                });
                match checked {
                    Ok(seen) => state.keep_checkpoint(seen),
                    Err(e) => {
                        println!("REFUSED: {e}");
                        return Ok(ExitCode::from(match e {
                            LogCheckError::SplitView { .. } => EXIT_SPLIT_VIEW,
                            LogCheckError::TooFewWitnesses { .. } => EXIT_UNWITNESSED,
                            _ => EXIT_NOT_IN_LOG,
                        }));
                    }
                }
            }
            if let Some(path) = state_file {
                state.accept(&verdict);
                state
                    .save(path)
                    .with_context(|| format!("cannot write state {}", path.display()))?;
            }
            match verdict.status {
                VersionStatus::Grace => {
                    println!(
                        "GRACE {} Volgnummer {}: valid signature, superseded, still honoured",
                        p.list, p.volgnummer
                    );
                    Ok(ExitCode::from(EXIT_GRACE))
                }
                _ => {
                    println!(
                        "OK {} Volgnummer {}: valid signature, valid until {}",
                        p.list, p.volgnummer, p.expires_at
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Err(e) => {
            println!("REFUSED: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}
