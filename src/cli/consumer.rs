//! `stelselnode verify`: a fetched list checked as a consumer node checks it (signature,
//! validity window, rollback), without configuration or database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::read_ca;
use crate::consumer::{ConsumerState, verify_fetched};
use crate::domain::{IndexedVersion, VersionStatus};

/// Exit status of the verifier for a valid version in its grace period.
const EXIT_GRACE: u8 = 3;

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
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let list_bytes = read(&args.list_file)?;
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
            serde_json::from_slice(&read(path)?).context("the version index is not valid JSON")?,
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
