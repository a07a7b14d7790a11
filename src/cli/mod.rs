//! The `stelselnode` command line: thin glue from arguments to the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::admin_client::{AdminClient, MutationFilter, StaffRequest};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::consumer::{ConsumerState, verify_fetched};
use crate::domain::IndexedVersion;
use crate::domain::{ListKind, VersionStatus};
use crate::import::{ImportError, import_document, render_working_state};
use crate::publication::{PublishError, PublishOptions, Publisher, Settings};
use crate::signing::SigningKey;
use crate::storage;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

mod archive;

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
    /// Check a fetched list as a consumer: signature, validity window, rollback.
    ///
    /// Exit status: 0 current, 3 valid but superseded (in its grace period), 4 signature or
    /// content invalid, 5 outside its validity, 6 rollback (not newer than the state), 1 error.
    Verify {
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
    },
    /// Staff commands against a running node's admin listener, with your client certificate.
    Mutation {
        #[command(flatten)]
        connection: StaffConnection,
        #[command(subcommand)]
        action: MutationAction,
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
    /// Retention (SPEC §7): destroy audit records past the log retention and purge the
    /// bytes of versions past the archive retention (`serve` does this hourly).
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
    /// The 2-werkdagen SLA (SPEC §8).
    Sla {
        #[command(subcommand)]
        question: SlaQuestion,
    },
    /// Werkdagen by hand (SPEC §8): business time between instants, or a deadline.
    Calendar {
        #[command(subcommand)]
        question: CalendarQuestion,
        /// A configured closed day (YYYY-MM-DD); repeat for more.
        #[arg(long = "extra-day", global = true)]
        extra_days: Vec<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum RetentionAction {
    /// One run now; prints what it removed.
    Run,
}

#[derive(Subcommand)]
enum SlaQuestion {
    /// Per list: counts, compliance, every breach with its timeline, exclusions with reason,
    /// of the mutations completed FROM to TO (days in Europe/Amsterdam, both included).
    Report {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Json,
    Csv,
}

#[derive(Subcommand)]
enum CalendarQuestion {
    /// The werkdagen between two RFC 3339 instants, e.g. 2026-04-02T09:00:00+02:00.
    Between {
        from: chrono::DateTime<chrono::FixedOffset>,
        to: chrono::DateTime<chrono::FixedOffset>,
    },
    /// The instant (RFC 3339, UTC) at which WERKDAGEN of business time have passed since FROM.
    Deadline {
        from: chrono::DateTime<chrono::FixedOffset>,
        werkdagen: f64,
    },
}

#[derive(clap::Args)]
struct StaffConnection {
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
enum MutationAction {
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
    match cli.command {
        // The consumer verifier and the sample writer need no configuration and no database.
        Command::Verify {
            list_file,
            signature,
            ca,
            state,
            versions,
        } => verify(
            &list_file,
            &signature,
            &ca,
            state.as_deref(),
            versions.as_deref(),
        ),
        Command::Sample {
            zorgaanbieders,
            dir,
        } => write_sample(zorgaanbieders, &dir),
        Command::Dev { dir } => run_dev(&dir).await,
        Command::Calendar {
            question,
            extra_days,
        } => calendar(question, extra_days),
        Command::Mutation { connection, action } => staff(connection, action).await,
        Command::Archive {
            action:
                archive::ArchiveAction::Verify {
                    dir,
                    ca,
                    signer,
                    state,
                    init_state,
                },
        } => archive::verify(archive::VerifyRequest {
            dir: &dir,
            ca: &ca,
            signers: signer,
            state_file: state.as_deref(),
            init_state,
        }),
        command => {
            let config = Config::load(cli.config.as_deref(), std::env::vars())?;
            with_database(&config, cli.config.as_deref(), command).await
        }
    }
}

/// Sends one staff command and prints the answer (JSON) on stdout; exit 0 when accepted,
/// 2 when refused (4xx: the answer says why), 1 otherwise.
async fn staff(connection: StaffConnection, action: MutationAction) -> anyhow::Result<ExitCode> {
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

async fn run_dev(dir: &Path) -> anyhow::Result<ExitCode> {
    let (config_path, created) = crate::dev::prepare(dir)?;
    if created {
        eprintln!(
            "created {} with a development CA, certificates and configuration",
            dir.display()
        );
    }
    let config = Config::load(Some(&config_path), std::env::vars())?;
    let storage = storage::connect(&config.database.url)
        .await
        .context("cannot open the database")?;
    storage.migrate().await?;
    // The example lists are published before the node listens: a whitelisted client that
    // connects at once must find the Whitelist there (issue 21).
    let publisher = Publisher::new(
        storage.clone(),
        Arc::new(SystemClock),
        Settings::from(&config.publication),
        load_signing_key(&config)?,
    );
    crate::dev::seed(storage.as_ref(), &publisher).await?;
    let application =
        crate::server::Application::build(config.clone(), storage.clone(), Arc::new(SystemClock))
            .await?
            .reloading_identities_from(config_path.clone());
    println!(
        "{}",
        crate::dev::instructions(
            dir,
            application.node_address(),
            application.admin_address(),
            application.ops_address()
        )
    );
    application.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}

/// Answers a werkdagen question on stdout: a decimal number of werkdagen, or an instant.
fn calendar(
    question: CalendarQuestion,
    extra_days: Vec<chrono::NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let werkdagen = crate::calendar::Werkdagen::new(extra_days);
    let utc = |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&chrono::Utc);
    match question {
        CalendarQuestion::Between { from, to } => {
            println!("{:.6}", werkdagen.business_time(utc(from), utc(to)));
        }
        CalendarQuestion::Deadline {
            from,
            werkdagen: days,
        } => {
            anyhow::ensure!(
                days.is_finite() && (0.0..=3650.0).contains(&days),
                "WERKDAGEN must be 0 to 3650"
            );
            let deadline = werkdagen.add_business_time(utc(from), days);
            println!(
                "{}",
                deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_sample(zorgaanbieders: usize, dir: &Path) -> anyhow::Result<ExitCode> {
    let network = crate::sample::network(
        crate::sample::SampleSize::realistic(zorgaanbieders),
        Utc::now(),
    );
    std::fs::create_dir_all(dir)?;
    for lijst in [&network.zal, &network.ocl, &network.gnl, &network.whitelist] {
        let path = dir.join(crate::signing::list_uri(lijst.kind()));
        std::fs::write(&path, crate::xml::render_list(lijst))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "wrote the four lists of a {zorgaanbieders}-Zorgaanbieder network to {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn with_database(
    config: &Config,
    config_file: Option<&Path>,
    command: Command,
) -> anyhow::Result<ExitCode> {
    let storage = storage::connect(&config.database.url)
        .await
        .context("cannot open the database")?;
    storage
        .migrate()
        .await
        .context("cannot migrate the database")?;
    match command {
        Command::Serve => {
            let mut application =
                crate::server::Application::build(config.clone(), storage, Arc::new(SystemClock))
                    .await?;
            if let Some(file) = config_file {
                application = application.reloading_identities_from(file.to_owned());
            }
            eprintln!(
                "serving: node https://{} admin https://{} ops http://{}",
                application.node_address(),
                application.admin_address(),
                application.ops_address()
            );
            application.run_until_stopped().await;
        }
        Command::Migrate => {
            eprintln!("database schema is up to date");
        }
        Command::Sla {
            question: SlaQuestion::Report { from, to, format },
        } => {
            let report = sla_service(config, storage)?.report(from, to).await?;
            match format {
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ReportFormat::Csv => print!("{}", report.to_csv()),
            }
        }
        Command::Import { list, file } => {
            let document =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let actor = cli_actor();
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
        Command::Publish {
            list,
            all,
            confirm_mass_change,
        } => {
            let key = load_signing_key(config)?;
            let publisher = Publisher::new(
                storage,
                Arc::new(SystemClock),
                Settings::from(&config.publication),
                key,
            );
            let options = PublishOptions {
                confirm_mass_change,
                published_by: format!(
                    "cli:{}",
                    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
                ),
            };
            let lists = match (list, all) {
                (Some(list), _) => vec![list],
                (None, _) => ListKind::PUBLICATION_ORDER.to_vec(),
            };
            for list in lists {
                match publisher.publish(list, &options).await {
                    Ok(record) => eprintln!(
                        "published {list} Volgnummer {} ({} bytes, sha256 {}{}), valid until {}",
                        record.volgnummer,
                        record.size_bytes,
                        record.sha256,
                        if record.heartbeat {
                            ", same entries as before"
                        } else {
                            ""
                        },
                        record.expires_at
                    ),
                    Err(PublishError::Refused { list, violations }) => {
                        eprintln!("{list} not published:");
                        for v in violations.as_slice() {
                            eprintln!("  {} [{}] {}", v.path, v.rule, v.message);
                        }
                        return Ok(ExitCode::from(EXIT_REFUSED));
                    }
                    Err(e) => return Err(e).context(format!("publishing {list} failed")),
                }
            }
        }
        Command::Retention {
            action: RetentionAction::Run,
        } => {
            let retention = crate::archive::Retention::new(
                storage,
                Arc::new(SystemClock),
                config.retention.clone(),
            );
            let outcome = retention.run(&cli_actor()).await?;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        Command::Archive { action } => {
            let sla = sla_service(config, storage.clone())?;
            return archive::run(config, storage, &sla, action).await;
        }
        Command::Verify { .. }
        | Command::Sample { .. }
        | Command::Calendar { .. }
        | Command::Dev { .. }
        | Command::Mutation { .. } => {
            unreachable!("execute runs these without a database")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who runs a command, as the audit log names them.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// The SLA service the CLI's commands read reports from (settling what is still open).
fn sla_service(
    config: &Config,
    storage: Arc<dyn storage::Storage>,
) -> anyhow::Result<crate::sla::SlaService> {
    Ok(crate::sla::SlaService::new(
        storage,
        Arc::new(SystemClock),
        Arc::new(crate::sla::SlaPolicy::new(&config.sla)),
        config.notify.clone(),
    )?)
}

fn load_signing_key(config: &Config) -> anyhow::Result<SigningKey> {
    let signing = &config.signing;
    if signing.key_file.is_empty() || signing.certificate_chain_file.is_empty() {
        anyhow::bail!(
            "publishing needs signing.key_file and signing.certificate_chain_file in the configuration"
        );
    }
    Ok(SigningKey::from_pem_files(
        Path::new(&signing.key_file),
        Path::new(&signing.certificate_chain_file),
    )?)
}

/// Exit status of the verifier for a valid version in its grace period.
const EXIT_GRACE: u8 = 3;

/// The CA certificates in a PEM file.
/// The CA certificates in a PEM file: at least one, each usable as a trust anchor (an empty
/// file would otherwise make every signature fail as if forged).
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

fn verify(
    list_file: &Path,
    signature: &Path,
    ca: &Path,
    state_file: Option<&Path>,
    versions: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let list_bytes = read(list_file)?;
    let signature = read(signature)?;
    let anchors = read_ca(ca)?;
    let mut state = match state_file {
        Some(path) => ConsumerState::load(path)
            .with_context(|| format!("cannot read state {}", path.display()))?,
        None => ConsumerState::default(),
    };
    let index: Option<Vec<IndexedVersion>> = match versions {
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
