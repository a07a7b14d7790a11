//! `stelselnode sla report`, `retention run` and `backup`: what the node's records say, what
//! retention removes from them, and a copy of them all.

use std::process::ExitCode;

use clap::Subcommand;

use super::cli_actor;
use crate::services::Services;

#[derive(Subcommand)]
pub enum RetentionAction {
    /// One run now; prints what it removed.
    Run,
}

#[derive(Subcommand)]
pub enum SlaQuestion {
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
pub enum ReportFormat {
    Json,
    Csv,
}

pub async fn sla(services: &Services, question: SlaQuestion) -> anyhow::Result<ExitCode> {
    let SlaQuestion::Report { from, to, format } = question;
    let report = services.sla.report(from, to).await?;
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Csv => print!("{}", report.to_csv()),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn retention(services: &Services, action: RetentionAction) -> anyhow::Result<ExitCode> {
    let RetentionAction::Run = action;
    let outcome = services.retention.run(&cli_actor()).await?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn backup(services: &Services, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let size = services.storage.backup(out).await?;
    println!(
        "backup {}: {size} bytes, integrity checked, in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
