//! A year of a node, for benches/restore-drill.sh (issue 23): into the (empty) database the
//! configuration names, a sample network of ZORGAANBIEDERS is imported; then, day by day on
//! a manual clock ending yesterday, every list is re-published each day (heartbeats), once a
//! week 1 % of the Zorgaanbieders change through the mutation workflow (submitted by loket,
//! approved by beheer, audited) and the ZAL is published, and each night a bundle is exported
//! into ARCHIVE_DIR/<day>, chained to the one before — as the nightly timer does.
//!
//! drill_year CONFIG ARCHIVE_DIR ZORGAANBIEDERS WEEKS
//!
//! Prints how many versions, mutations and audit records the year made.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Days, Duration, Utc};
use serde_json::{Value, json};
use stelselnode::archive::ExportRequest;
use stelselnode::calendar::{local_date, start_of};
use stelselnode::clock::{Clock, ManualClock};
use stelselnode::config::Config;
use stelselnode::domain::{AuditOutcome, AuditRecord, ListKind, Role};
use stelselnode::mutations::{Actor, parse_submission};
use stelselnode::publication::PublishOptions;
use stelselnode::sample::{SampleSize, network};
use stelselnode::services::Services;
use stelselnode::storage::StateLine;

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        fingerprint: format!("{name}-fingerprint"),
        subject: format!("CN={name}"),
        roles: vec![role],
        action: "drill".into(),
    }
}

/// The stored entry of a Zorgaanbieder with its first Gegevensdienst's authorization
/// endpoint moved to a path of this week: a real change that passes every rule.
fn changed(body: &str, week: u64) -> Value {
    let mut entry: Value = serde_json::from_str(body).expect("a stored entry is JSON");
    let endpoint = &mut entry["gegevensdiensten"][0]["authorization_endpoint"];
    let base = endpoint.as_str().unwrap_or_default();
    let base = base.split("/w").next().unwrap_or(base).to_owned();
    *endpoint = json!(format!("{base}/w{week}"));
    entry
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, archive, zorgaanbieders, weeks] = args.as_slice() else {
        panic!("usage: drill_year CONFIG ARCHIVE_DIR ZORGAANBIEDERS WEEKS");
    };
    let n: usize = zorgaanbieders.parse().unwrap();
    let weeks: u64 = weeks.parse().unwrap();
    let archive = PathBuf::from(archive);
    std::fs::create_dir_all(&archive).unwrap();
    let mut config = Config::load(Some(config.as_ref()), std::env::vars()).unwrap();
    // Approved changes wait for the weekly publication.
    config.publication.auto_publish_delay_seconds = 86_400;
    let storage = stelselnode::storage::connect(&config.database.url)
        .await
        .unwrap();
    storage.migrate().await.unwrap();

    let first_day = local_date(Utc::now()) - Days::new(weeks * 7);
    let clock = ManualClock::new(start_of(first_day) + Duration::hours(8));
    let services = Services::build(&config, storage.clone(), Arc::new(clock.clone())).unwrap();
    let sample = network(SampleSize::realistic(n), clock.now());
    let import = AuditRecord {
        at: clock.now(),
        actor_subject: "CN=drill".into(),
        actor_fingerprint: None,
        role: None,
        action: "import".into(),
        object: None,
        on_behalf_of: None,
        outcome: AuditOutcome::Allowed,
        reason: None,
    };
    for list in [&sample.whitelist, &sample.gnl, &sample.ocl, &sample.zal] {
        storage
            .import_list(list, clock.now(), &import)
            .await
            .unwrap();
    }
    let publish = async |list: ListKind, by: &str| {
        let options = PublishOptions {
            confirm_mass_change: true,
            published_by: by.into(),
        };
        services.publisher.publish(list, &options).await.unwrap();
    };
    for list in ListKind::PUBLICATION_ORDER {
        publish(list, "drill").await;
    }

    let (loket, beheer) = (actor("loket", Role::Loket), actor("beheer", Role::Beheer));
    let started = Instant::now();
    let mut previous: Option<PathBuf> = None;
    let mut mutations = 0;
    for day in 0..weeks * 7 {
        let date = first_day + Days::new(day);
        let morning = start_of(date) + Duration::hours(9);
        clock.set(morning);
        let weekly = day % 7 == 6;
        if weekly {
            let week = day / 7 + 1;
            let entries: Vec<_> = storage
                .state_lines()
                .await
                .unwrap()
                .into_iter()
                .filter_map(|line| match line {
                    StateLine::Entry(e) if e.list == ListKind::Zal && e.body.is_some() => Some(e),
                    _ => None,
                })
                .collect();
            for (i, entry) in entries.iter().enumerate() {
                if i % 100 != (week % 100) as usize {
                    continue;
                }
                let submission = json!({
                    "list": "zal", "operation": "upsert", "base_version": entry.version,
                    "entry": changed(entry.body.as_deref().unwrap(), week),
                    "on_behalf_of": "Drill Zorgaanbieder", "reference": format!("DRILL-{week}-{i}"),
                });
                let submission = parse_submission(&submission).unwrap();
                let submitted = services.workflow.submit(&loket, submission).await.unwrap();
                services
                    .workflow
                    .approve(&beheer, &submitted)
                    .await
                    .unwrap();
                mutations += 1;
            }
            clock.set(morning + Duration::hours(2));
            publish(ListKind::Zal, "drill weekly").await;
        }
        clock.set(morning + Duration::hours(3));
        for list in ListKind::PUBLICATION_ORDER {
            if !(weekly && list == ListKind::Zal) {
                publish(list, "heartbeat").await;
            }
        }
        let to = start_of(date + Days::new(1));
        clock.set(to + Duration::minutes(90));
        let out = archive.join(date.to_string());
        let request = ExportRequest {
            out: out.clone(),
            from: None,
            to,
            previous: previous.replace(out),
        };
        services
            .exports
            .export(&request, &mut |_, _| {})
            .await
            .unwrap();
        if day % 28 == 27 {
            eprintln!(
                "day {} of {}: {mutations} mutations, {:.0} s",
                day + 1,
                weeks * 7,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let mut versions = 0;
    for list in ListKind::ALL {
        versions += storage.versions(list).await.unwrap().len();
    }
    println!(
        "versions {versions} mutations {mutations} bundles {}",
        weeks * 7
    );
}
