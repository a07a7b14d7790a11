//! `stelselnode archive …`: export a signed bundle, verify one offline, restore a lost
//! database from bundles.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;

use super::{log_key, read_ca};
use crate::archive::{
    ArchiveCheck, BundleState, BundleTrust, ConsumerCopy, ExportRequest, MIN_MARGIN,
    RestoreRequest, Restorer, Severity, verify_bundle,
};
use crate::calendar::{local_date, start_of};
use crate::domain::ListKind;
use crate::services::Services;
use crate::storage::Storage;

#[derive(Subcommand)]
pub enum ArchiveAction {
    /// Write a signed bundle of the versions published in a period into DIR (which must not
    /// exist yet or be empty). Dates are days in Europe/Amsterdam (or RFC 3339 instants).
    Export {
        #[arg(long)]
        out: PathBuf,
        /// Default: where --previous ends, or the first version.
        #[arg(long, value_parser = instant)]
        from: Option<DateTime<Utc>>,
        /// Not included. Default: the last midnight in Europe/Amsterdam.
        #[arg(long, value_parser = instant)]
        to: Option<DateTime<Utc>>,
        /// The bundle this one follows (its manifest digest is chained; its end is our start).
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Export what the newest bundle in DIR does not cover yet, up to the last midnight, as
    /// DIR/<last day covered>; keep the newest KEEP bundles (for the systemd timer).
    Nightly {
        #[arg(long)]
        dir: PathBuf,
        /// At least 1: the next export follows the newest bundle.
        #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..))]
        keep: u32,
    },
    /// Re-read every stored version: its bytes against its SHA-256, its signature (with --ca
    /// or archive.ca_file), the chain. Exit status 4 when anything is wrong.
    Check {
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// The list as it was served at an instant: its bytes on stdout (or into --out), its
    /// Volgnummer and status then on stderr. Exit status 3 when it was in its grace period, 1
    /// when no version was honoured then.
    At {
        #[arg(long)]
        list: ListKind,
        #[arg(long, value_parser = instant)]
        at: DateTime<Utc>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a bundle without database or network.
    ///
    /// Exit status: 0 valid, 4 content, digest, signature, chain or transparency log problem
    /// (a version the bundle hides, another history than the last bundle's), 5 past its
    /// `expires` (freeze), 6 older than the last bundle seen (rollback), 1 error. Every problem
    /// is printed; the state is written only when there is none.
    Verify(VerifyArgs),
    /// Rebuild a lost database from every bundle since the first export, and from consumer
    /// nodes' copies of versions published after the last bundle.
    ///
    /// The database (the configured one) must be empty. Every bundle and every copy is
    /// verified first; nothing is written when any check fails. Each list then continues
    /// MARGIN Volgnummers after the last version recovered, so no node sees a Volgnummer
    /// again (README, "Disaster recovery").
    Restore(RestoreArgs),
    /// After a database backup was put back (SQLite's `stelselnode backup`, PostgreSQL's
    /// pg_basebackup): add consumer nodes' copies of versions published after the backup,
    /// and continue each list MARGIN Volgnummers further, as a restore does. Run it before
    /// the node serves from a restored backup, with or without copies.
    Adopt(RecoveryArgs),
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// Bundle directories, in any order: every one from the first export (or the oldest
    /// still kept) to the newest.
    #[arg(required = true)]
    bundles: Vec<PathBuf>,
    #[command(flatten)]
    recovery: RecoveryArgs,
}

#[derive(clap::Args)]
pub struct RecoveryArgs {
    /// The CA certificate(s) the node's signing certificates chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The expected signer, as for `archive verify` (repeatable).
    #[arg(long)]
    signer: Vec<crate::signing::SignerPin>,
    /// The transparency log's verifier key (`<name>+<id>+<key>`, or a file holding it): each
    /// bundle's log checkpoint must be signed by it.
    #[arg(long)]
    log_key: Option<String>,
    /// A consumer's copy of a version: LIST_FILE=SIGNATURE_FILE, or LIST_FILE when its
    /// signature is LIST_FILE.sig (repeatable).
    #[arg(long = "copy", value_parser = consumer_copy)]
    copies: Vec<ConsumerCopy>,
    /// How many Volgnummers each list skips after the last one recovered: more than could
    /// have been published since the last bundle.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(MIN_MARGIN..=1_000_000))]
    margin: i64,
    /// The copies given are the newest versions any consumer holds: serve the lists
    /// recovered as they are (byte for byte) until the next publication, instead of
    /// publishing every list past the margin before the node serves.
    #[arg(long)]
    serve_recovered: bool,
}

fn consumer_copy(text: &str) -> Result<ConsumerCopy, String> {
    let (list_file, signature) = match text.split_once('=') {
        Some((list, signature)) => (PathBuf::from(list), PathBuf::from(signature)),
        None => (PathBuf::from(text), PathBuf::from(format!("{text}.sig"))),
    };
    Ok(ConsumerCopy {
        list_file,
        signature,
    })
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    dir: PathBuf,
    /// The CA certificate(s) the node's signing certificate chains to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The expected signer: cn:<subject common name> or spki-sha256:<hex> (repeatable;
    /// any one matches). Without it, any certificate under the CA with the codeSigning
    /// usage signs.
    #[arg(long)]
    signer: Vec<crate::signing::SignerPin>,
    /// The transparency log's verifier key (`<name>+<id>+<key>`, or a file holding it): the
    /// bundle's log checkpoint must be signed by it.
    #[arg(long)]
    log_key: Option<String>,
    /// JSON file with the last bundle accepted; updated on success. It must exist, unless
    /// --init-state is given (the first bundle an auditor verifies).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Create --state: no earlier bundle has been seen.
    #[arg(long, requires = "state")]
    init_state: bool,
}

/// A day (its start in Europe/Amsterdam) or an RFC 3339 instant.
fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(start_of(day));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "expected YYYY-MM-DD or an RFC 3339 instant".into())
}

pub async fn run(services: &Services, action: ArchiveAction) -> anyhow::Result<ExitCode> {
    match action {
        ArchiveAction::Export {
            out,
            from,
            to,
            previous,
        } => {
            let request = ExportRequest {
                out,
                from,
                to: to.unwrap_or_else(|| start_of(local_date(services.clock.now()))),
                previous,
            };
            export(services, &request).await
        }
        ArchiveAction::Nightly { dir, keep } => {
            match services.exports.nightly(&dir, keep as usize).await? {
                Some(summary) => eprintln!(
                    "{} versions exported; MANIFEST sha256 {}",
                    summary.versions, summary.manifest_sha256
                ),
                None => eprintln!("the newest bundle in {} is up to date", dir.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
        ArchiveAction::Check { ca } => check(services, ca.as_deref()).await,
        ArchiveAction::At { list, at, out } => {
            served_at(services.storage.as_ref(), list, at, out).await
        }
        ArchiveAction::Verify(args) => verify(&args),
        ArchiveAction::Restore(args) => restore(services, Some(args.bundles), args.recovery).await,
        ArchiveAction::Adopt(args) => restore(services, None, args).await,
    }
}

async fn export(services: &Services, request: &ExportRequest) -> anyhow::Result<ExitCode> {
    let mut last_report = std::time::Instant::now();
    let summary = services
        .exports
        .export(request, &mut |done, total| {
            if done == total || last_report.elapsed().as_secs() >= 2 {
                eprintln!("exported {done} of {total} versions");
                last_report = std::time::Instant::now();
            }
        })
        .await?;
    eprintln!(
        "bundle {}: {} versions, {} bodies, {} bytes; MANIFEST sha256 {}",
        request.out.display(),
        summary.versions,
        summary.bodies,
        summary.bytes,
        summary.manifest_sha256
    );
    Ok(ExitCode::SUCCESS)
}

/// The archive check of `serve`, once; `--ca` replaces `archive.ca_file` for this run.
async fn check(services: &Services, ca: Option<&Path>) -> anyhow::Result<ExitCode> {
    let check = match ca {
        Some(path) => Arc::new(ArchiveCheck::new(
            services.storage.clone(),
            services.clock.clone(),
            read_ca(path)?,
        )),
        None => services.archive_check.clone(),
    };
    if ca.is_none() && services.config.archive.ca_file.is_empty() {
        eprintln!("no --ca or archive.ca_file: signatures are not checked");
    }
    let report = check.run().await?;
    for problem in &report.problems {
        println!("PROBLEM: {problem}");
    }
    println!(
        "{} versions checked, {} problems",
        report.versions,
        report.problems.len()
    );
    Ok(match report.problems.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(4),
    })
}

async fn served_at(
    storage: &dyn Storage,
    list: ListKind,
    at: DateTime<Utc>,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let honoured = storage.versions_honoured_at(list, at).await?;
    let Some((record, status)) = crate::domain::served_at(&honoured, at) else {
        eprintln!("no version of the {list} list was honoured at {at}");
        return Ok(ExitCode::FAILURE);
    };
    let stored = storage
        .version(list, record.volgnummer)
        .await?
        .context("the version disappeared")?;
    let bytes = crate::publication::assemble(&stored)?;
    match out {
        Some(path) => std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::Write::write_all(&mut std::io::stdout(), &bytes)?,
    }
    eprintln!(
        "{list} Volgnummer {} was {} at {at}",
        record.volgnummer,
        format!("{status:?}").to_lowercase()
    );
    Ok(match status {
        crate::domain::VersionStatus::Grace => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    })
}

/// `archive restore` (with bundles) and `archive adopt` (into a restored backup).
async fn restore(
    services: &Services,
    bundles: Option<Vec<PathBuf>>,
    args: RecoveryArgs,
) -> anyhow::Result<ExitCode> {
    let restorer = Restorer {
        storage: services.storage.clone(),
        trust: BundleTrust {
            anchors: read_ca(&args.ca)?,
            signers: crate::signing::SignerPolicy::pinned(args.signer),
            log_key: args.log_key.as_deref().map(log_key).transpose()?,
        },
    };
    let now = services.clock.now();
    let started = std::time::Instant::now();
    let mut last_report = std::time::Instant::now();
    let request = RestoreRequest {
        bundles: bundles.clone().unwrap_or_default(),
        copies: args.copies,
        margin: args.margin,
        republish: !args.serve_recovered,
    };
    let report = match bundles {
        Some(_) => {
            restorer
                .restore(&request, now, &mut |done, total| {
                    if done == total || last_report.elapsed().as_secs() >= 2 {
                        eprintln!("restored {done} of {total} bundles");
                        last_report = std::time::Instant::now();
                    }
                })
                .await
        }
        None => restorer.adopt(&request, now).await,
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            println!("REFUSED: {e}");
            return Ok(ExitCode::from(4));
        }
    };
    println!(
        "restored {} bundles in {:.1} s: {} versions, {} audit records, {} consumer copies \
         already held",
        report.bundles,
        started.elapsed().as_secs_f64(),
        report.versions,
        report.audit_records,
        report.copies_already_held
    );
    for (list, restored) in &report.lists {
        println!(
            "{list}: last Volgnummer recovered {} ({} from consumer copies); publishes {} next{}",
            restored.last_recovered,
            restored.adopted,
            restored.next_volgnummer,
            match restored.working_state_from_version {
                true => "; working state: the content of the last version recovered",
                false => "",
            }
        );
    }
    let mutations: Vec<String> = report
        .mutations
        .iter()
        .map(|(status, n)| format!("{n} {}", status.as_str()))
        .collect();
    println!("mutations: {}", mutations.join(", "));
    if let Some(from) = report.recovered_from {
        println!(
            "the oldest bundle given starts at {from}: versions, mutations and audit records \
             before it (in bundles no longer kept) were not restored"
        );
    }
    println!(
        "nothing after {} was recovered: mutations and audit records after it are lost; \
         versions after it only as far as consumer copies carried them",
        report.recovered_up_to
    );
    if report.bundles > 0 {
        println!(
            "transparency log: its first {} leaves as the bundles held them; a consumer that \
             kept a checkpoint of more leaves than that may report a split view",
            report.log_leaves
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(request: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let trust = BundleTrust {
        anchors: read_ca(&request.ca)?,
        signers: crate::signing::SignerPolicy::pinned(request.signer.clone()),
        log_key: request.log_key.as_deref().map(log_key).transpose()?,
    };
    let state_file = request.state.as_deref();
    let state: Option<BundleState> = match (state_file, request.init_state) {
        (Some(path), true) => {
            if std::fs::symlink_metadata(path).is_ok() {
                anyhow::bail!("{} exists: --init-state makes a new one", path.display());
            }
            None
        }
        (Some(path), false) => {
            let bytes = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the state {}: {e} (the first time, add --init-state)",
                    path.display()
                )
            })?;
            Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a bundle state", path.display()))?,
            )
        }
        (None, _) => None,
    };
    match verify_bundle(&request.dir, &trust, state.as_ref(), Utc::now()) {
        Ok(verified) => {
            if let Some(path) = state_file {
                let json = serde_json::to_vec_pretty(&verified.state).expect("state serialises");
                std::fs::write(path, json)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!(
                "OK {}: {} versions up to {}, MANIFEST sha256 {}, signed by {}",
                request.dir.display(),
                verified.versions,
                verified.manifest.covers_up_to,
                verified.state.manifest_sha256,
                verified.signer.pins()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                println!("REFUSED: {}", p.message);
            }
            let worst = problems.iter().map(|p| p.severity).max();
            Ok(ExitCode::from(match worst {
                Some(Severity::Rollback) => 6,
                Some(Severity::Expired) => 5,
                _ => 4,
            }))
        }
    }
}
