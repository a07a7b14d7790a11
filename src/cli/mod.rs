//! The `stelselnode` command line: thin glue from arguments to the library's services.
//!
//! One module per command group; each command that needs the node's database says so by
//! opening it (`NodeConfig::open`: the configuration, the database, every service, once),
//! the others run without configuration. `anyhow` lives only here and in `main.rs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::{ListKind, Violations};
use crate::services::Services;

mod archive;
mod consumer;
mod lists;
mod node;
mod records;
mod staff;
mod tools;

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
    /// Serve the node, admin and ops listeners until SIGTERM (SIGHUP reloads certificates).
    Serve,
    /// Run a development node from ./dev/ (made on first use: certificates, configuration,
    /// example lists published as version 1) and print how to reach it.
    Dev {
        #[arg(long, default_value = "dev")]
        dir: PathBuf,
        /// Keep the signing key in a SoftHSM2 token (made in DIR/softhsm on first use).
        #[arg(long)]
        softhsm: bool,
    },
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
    /// Publish the working state of one list, or of all four, as new signed versions.
    Publish {
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        list: Option<ListKind>,
        /// All four lists, the referenced ones first (Whitelist, GNL, OCL, ZAL).
        #[arg(long)]
        all: bool,
        /// Allow removing more than the configured share of a list's entries.
        #[arg(long)]
        confirm_mass_change: bool,
    },
    /// Check a fetched list as a consumer: signature, validity window, rollback, fork.
    ///
    /// Exit status: 0 current, 3 valid but superseded (in its grace period), 4 signature or
    /// content invalid, 5 outside its validity, 6 rollback (not newer than the state) or fork
    /// (the next Volgnummer naming another predecessor), 7 not in the transparency log as its
    /// checkpoint shows it, 8 split view (the checkpoint contradicts the one kept), 9 fewer
    /// witness cosignatures than required, 1 error.
    Verify(consumer::VerifyArgs),
    /// Staff commands against a running node's admin listener, with your client certificate.
    Mutation {
        #[command(flatten)]
        connection: staff::StaffConnection,
        #[command(subcommand)]
        action: staff::MutationAction,
    },
    /// Write the four lists of a consistent example network (for development and load tests).
    Sample {
        #[arg(long, default_value_t = 100)]
        zorgaanbieders: usize,
        /// Directory to write MedMij_*.xml into.
        #[arg(long)]
        dir: PathBuf,
    },
    /// The archive (SPEC §7): signed bundles of the published versions, verified offline.
    Archive {
        #[command(subcommand)]
        action: archive::ArchiveAction,
    },
    /// A consistent copy of the SQLite database while the node serves (for the hourly
    /// timer), checked with PRAGMA integrity_check and written atomically. PostgreSQL is
    /// backed up with pg_basebackup and WAL archiving (README, "Disaster recovery").
    Backup {
        /// The backup file: replaced only by a complete, checked copy.
        #[arg(long)]
        out: PathBuf,
    },
    /// Retention (SPEC §7): destroy audit records past the log retention and purge the
    /// bytes of versions past the archive retention (`serve` does this hourly).
    Retention {
        #[command(subcommand)]
        action: records::RetentionAction,
    },
    /// The 2-werkdagen SLA (SPEC §8).
    Sla {
        #[command(subcommand)]
        question: records::SlaQuestion,
    },
    /// Print the transparency log's verifier key (`<name>+<id>+<key>`), for consumers, from
    /// `transparency.key_file` (a note key file or a PKCS#11 URI).
    LogKey,
    /// Werkdagen by hand (SPEC §8): business time between instants, or a deadline.
    Calendar {
        #[command(subcommand)]
        question: tools::CalendarQuestion,
        /// A configured closed day (YYYY-MM-DD); repeat for more.
        #[arg(long = "extra-day", global = true)]
        extra_days: Vec<chrono::NaiveDate>,
    },
}

/// Exit status when input was refused (as opposed to 1 for an operational failure).
const EXIT_REFUSED: u8 = 2;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let log_writer = init_logging();
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(execute(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    // Every log line is out before the final word.
    drop(log_writer);
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines (the access log above all: one per request) go to stderr from a thread of
/// their own, in batches, so a request never waits for a write to stderr (issue 25; nginx
/// buffers its access log for the same reason). Not lossy: when the queue is full, logging
/// waits. Lines still queued when the process is killed outright are lost; dropping the
/// returned guard writes out the rest.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STELSELNODE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours for a person at a terminal, never in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer)
        .init();
    guard
}

/// Where the node's configuration comes from; opened only by commands that need it.
pub(crate) struct NodeConfig {
    file: Option<PathBuf>,
}

impl NodeConfig {
    fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.file.as_deref(), std::env::vars())?)
    }

    /// The configuration, its database (migrated) and every service over it.
    async fn open(&self) -> anyhow::Result<Services> {
        let config = self.load()?;
        Services::open(&config, Arc::new(SystemClock))
            .await
            .context("cannot open the database")
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let node = NodeConfig { file: cli.config };
    match cli.command {
        // Without configuration or database.
        Command::Verify(args) => consumer::verify(&args),
        Command::Sample {
            zorgaanbieders,
            dir,
        } => tools::write_sample(zorgaanbieders, &dir),
        Command::Calendar {
            question,
            extra_days,
        } => tools::calendar(question, extra_days),
        Command::Mutation { connection, action } => staff::send(connection, action).await,
        Command::LogKey => {
            let config = node.load()?;
            match crate::services::checkpoint_signer(&config)? {
                Some(signer) => {
                    println!("{}", signer.verifier_key());
                    Ok(ExitCode::SUCCESS)
                }
                None => anyhow::bail!("transparency.key_file names no key"),
            }
        }
        Command::Archive {
            action: archive::ArchiveAction::Verify(args),
        } => archive::verify(&args),
        // Its own configuration and database, under DIR.
        Command::Dev { dir, softhsm } => node::dev(&dir, softhsm).await,
        // On the node's database.
        Command::Serve => node::serve(&node).await,
        Command::Migrate => {
            node.open().await?;
            eprintln!("database schema is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { list, file } => lists::import(&node.open().await?, list, &file).await,
        Command::Export { list } => lists::export(&node.open().await?, list).await,
        Command::Publish {
            list,
            all,
            confirm_mass_change,
        } => {
            let lists = match (list, all) {
                (Some(list), _) => vec![list],
                (None, _) => ListKind::PUBLICATION_ORDER.to_vec(),
            };
            lists::publish(&node.open().await?, &lists, confirm_mass_change).await
        }
        Command::Archive { action } => archive::run(&node.open().await?, action).await,
        Command::Retention { action } => records::retention(&node.open().await?, action).await,
        Command::Backup { out } => records::backup(&node.open().await?, &out).await,
        Command::Sla { question } => records::sla(&node.open().await?, question).await,
    }
}

/// Who runs a command, as the audit log and the versions name them.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// Prints a refusal with every violation on stderr and gives the refusal exit status.
fn refused(heading: &str, violations: &Violations) -> ExitCode {
    eprintln!("{heading}");
    for v in violations.as_slice() {
        eprintln!("  {} [{}] {}", v.path, v.rule, v.message);
    }
    ExitCode::from(EXIT_REFUSED)
}

/// The CA certificates in a PEM file: at least one, each usable as a trust anchor (an empty
/// file would otherwise make every signature fail as if forged).
/// A file a consumer or auditor got from elsewhere, read only up to `cap` bytes: a file of
/// any size (or a device that never ends) is refused, not read into memory.
fn read_bounded(path: &Path, cap: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= cap,
        "{} is larger than {cap} bytes: not what it should be",
        path.display()
    );
    Ok(bytes)
}

/// A transparency log verifier key given as itself (`<name>+<id>+<key>`) or as a file
/// holding it.
fn log_key(text: &str) -> anyhow::Result<String> {
    let path = Path::new(text);
    if !path.is_file() {
        return Ok(text.to_owned());
    }
    let bytes = read_bounded(path, 64 * 1024)?;
    String::from_utf8(bytes).with_context(|| format!("{} is not a log key", path.display()))
}

fn read_ca(ca: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|_| anyhow::anyhow!("cannot read CA certificates from {}", ca.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{} holds no CA certificate (PEM)", ca.display());
    }
    for certificate in &certificates {
        webpki::anchor_from_trusted_cert(certificate).map_err(|_| {
            anyhow::anyhow!("{} holds a certificate that cannot be read", ca.display())
        })?;
    }
    Ok(certificates)
}
