//! `stelselnode sample` and `calendar`: an example network, and werkdagen by hand. Neither
//! needs configuration or a database.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum CalendarQuestion {
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

/// Answers a werkdagen question on stdout: a decimal number of werkdagen, or an instant.
pub fn calendar(
    question: CalendarQuestion,
    extra_days: Vec<chrono::NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let werkdagen = crate::calendar::Werkdagen::new(extra_days);
    let utc = |t: chrono::DateTime<chrono::FixedOffset>| t.with_timezone(&Utc);
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

pub fn write_sample(zorgaanbieders: usize, dir: &Path) -> anyhow::Result<ExitCode> {
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
