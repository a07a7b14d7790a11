//! The `stelselnode` command line: thin glue from arguments to the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::domain::ListKind;
use crate::import::{ImportError, import_document, render_working_state};
use crate::storage;

#[derive(Parser)]
#[command(
    name = "stelselnode",
    version,
    about = "Registry publication node of the MedMij network"
)]
struct Cli {
    /// Configuration file (TOML). Settings can be overridden with STELSELNODE_<SECTION>_<KEY>.
    #[arg(long, global = true, env = "STELSELNODE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade the database schema.
    Migrate,
    /// Replace a list's working state with an existing list in its official XML format.
    Import {
        #[arg(long)]
        list: ListKind,
        file: PathBuf,
    },
    /// Write the current working state of a list, as the next publication would render it.
    Export {
        #[arg(long)]
        list: ListKind,
    },
}

/// Exit status when input was refused (as opposed to 1 for an operational failure).
const EXIT_REFUSED: u8 = 2;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STELSELNODE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    let storage = storage::connect(&config.database.url)
        .await
        .context("cannot open the database")?;
    storage
        .migrate()
        .await
        .context("cannot migrate the database")?;
    match cli.command {
        Command::Migrate => {
            eprintln!("database schema is up to date");
        }
        Command::Import { list, file } => {
            let document =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            );
            match import_document(storage.as_ref(), list, &document, &actor, Utc::now()).await {
                Ok(outcome) => {
                    tracing::info!(%list, entries = outcome.entries, changed = outcome.changed,
                        removed = outcome.removed, "list imported");
                    eprintln!(
                        "imported {list}: {} entries ({} added or changed, {} removed); next Volgnummer {}",
                        outcome.entries,
                        outcome.changed,
                        outcome.removed,
                        outcome.head.next_volgnummer()
                    );
                }
                Err(ImportError::Refused { list, violations }) => {
                    eprintln!("{} refused, nothing was stored:", file.display());
                    for v in violations.as_slice() {
                        eprintln!("  {} [{}] {}", v.path, v.rule, v.message);
                    }
                    tracing::warn!(%list, refusals = violations.as_slice().len(), "import refused");
                    return Ok(ExitCode::from(EXIT_REFUSED));
                }
                Err(ImportError::Storage(e)) => return Err(e).context("import failed"),
            }
        }
        Command::Export { list } => {
            let bytes = render_working_state(storage.as_ref(), list, Utc::now()).await?;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
