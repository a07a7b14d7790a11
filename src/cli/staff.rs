//! `stelselnode mutation …`: staff commands against a running node's admin listener, with the
//! staff member's own client certificate (the node applies roles, four eyes and audit).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::EXIT_REFUSED;
use crate::admin_client::{AdminClient, MutationFilter, StaffRequest};

#[derive(clap::Args)]
pub struct StaffConnection {
    /// The admin listener, e.g. https://localhost:9443.
    #[arg(long, default_value = "https://localhost:9443")]
    admin: String,
    /// CA certificate(s) the admin listener's certificate chains to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// Your client certificate (PEM) and its PKCS#8 key (PEM).
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
}

#[derive(Subcommand)]
pub enum MutationAction {
    /// Submit a mutation from a JSON file (`-` for stdin); see docs/openapi.yaml, Submission.
    Submit { file: PathBuf },
    /// Run the checks of a submission without storing it.
    Validate { file: PathBuf },
    /// Approve a mutation (beheer, never your own).
    Approve { id: i64 },
    /// Reject a mutation with a reason (beheer, never your own).
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw your own submitted mutation.
    Withdraw { id: i64 },
    /// Show one mutation.
    Show { id: i64 },
    /// List mutations, newest first.
    List(MutationFilter),
}

/// The admin API request of a staff command.
fn staff_request(action: MutationAction) -> anyhow::Result<StaffRequest> {
    let file = |path: &Path| -> anyhow::Result<serde_json::Value> {
        let text = match path == Path::new("-") {
            true => std::io::read_to_string(std::io::stdin())?,
            false => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        };
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    };
    Ok(match action {
        MutationAction::Submit { file: f } => StaffRequest::Submit(file(&f)?),
        MutationAction::Validate { file: f } => StaffRequest::Validate(file(&f)?),
        MutationAction::Approve { id } => StaffRequest::Approve(id),
        MutationAction::Reject { id, reason } => StaffRequest::Reject { id, reason },
        MutationAction::Withdraw { id } => StaffRequest::Withdraw(id),
        MutationAction::Show { id } => StaffRequest::Show(id),
        MutationAction::List(filter) => StaffRequest::List(filter),
    })
}

/// Sends one staff command and prints the answer (JSON) on stdout; exit 0 when accepted,
/// 2 when refused (4xx: the answer says why), 1 otherwise.
pub async fn send(connection: StaffConnection, action: MutationAction) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(
        &connection.admin,
        &connection.ca,
        &connection.cert,
        &connection.key,
    )?;
    let response = client.send(&staff_request(action)?).await?;
    println!("{}", serde_json::to_string_pretty(&response.body)?);
    Ok(match response.status {
        200..=299 => ExitCode::SUCCESS,
        400..=499 => {
            eprintln!("refused: HTTP {}", response.status);
            ExitCode::from(EXIT_REFUSED)
        }
        status => {
            eprintln!("failed: HTTP {status}");
            ExitCode::FAILURE
        }
    })
}
