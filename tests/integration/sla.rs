//! The 2-werkdagen SLA end to end on both backends (issue 13): mutations submitted, decided
//! and published over the admin listener at instants a manual clock sets; `/metrics` read
//! back against values computed by hand, and again after a restart; the report.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use stelselnode::tls::NodeAccess;

use super::support::mutations::gnl_upsert;
use super::support::promtool::promtool_check_metrics;
use super::support::receivers::{SmtpServer, WebhookReceiver, nothing_listens};
use super::support::server::{TestServer, approve, post, submit};
use super::support::{TestDatabase, execute_sql};

on_both_backends!(
    the_sla_metrics_equal_hand_computed_values_also_after_a_restart,
    an_expected_breach_is_mailed_and_posted_exactly_once_across_restarts,
    mutations_stored_before_the_sla_get_their_deadline_and_outcome_at_start,
);

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// The value of one series (labels in the order the node writes them).
fn sample(metrics: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"));
    line[prefix.len()..].parse().unwrap()
}

fn assert_sample(metrics: &str, series: &str, expected: f64) {
    let value = sample(metrics, series);
    assert!(
        (value - expected).abs() < 1e-6,
        "{series} is {value}, expected {expected}"
    );
}

async fn submit_at(server: &TestServer, when: &str, body: Value) -> i64 {
    server.clock.set(at(when));
    submit(server, &server.pki.loket, &body).await
}

async fn approve_at(server: &TestServer, id: i64, when: &str) {
    server.clock.set(at(when));
    let (status, approved) = approve(server, &server.pki.beheer, id).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "published");
}

/// The scenario, Monday 7 to Wednesday 9 December 2026 (CET, no holidays):
///
/// | id | submitted  | then                          | werkdagen     | outcome  |
/// |----|------------|-------------------------------|---------------|----------|
/// | A  | Mon 09:00  | approved + published Mon 10:00 | 1/24         | met      |
/// | F  | Mon 09:00  | urgent, agreed Mon 11:00; Mon 10:30 | 1.5/24  | met      |
/// | C  | Mon 09:00  | withdrawn Mon 09:30           | —             | excluded |
/// | B  | Mon 09:00  | approved + published Wed 10:00 | 2 + 1/24     | breached |
/// | E  | Mon 12:00  | open; deadline Wed 12:00      | 2/24 left     | at risk  |
/// | D  | Tue 09:00  | open; deadline Thu 09:00      | 23/24 left    | open     |
///
/// read at Wednesday 10:00.
async fn the_sla_metrics_equal_hand_computed_values_also_after_a_restart(db: TestDatabase) {
    // With a transparency log witness that never answers, so that the per-witness series the
    // alert rules use are in the scrape too.
    let (_, witness_key) = stelselnode::transparency::generate_note_key("absent.example");
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, _, _| {
        config.transparency.witnesses = vec![stelselnode::config::WitnessConfig {
            url: format!("http://127.0.0.1:{}/", super::support::free_port()),
            verifier_key: witness_key.clone(),
        }];
    })
    .await;
    server.clock.set(at("2026-12-07T08:00:00+01:00"));
    server.publish_all().await;
    let loket = &server.pki.loket;

    let a = submit_at(
        &server,
        "2026-12-07T09:00:00+01:00",
        gnl_upsert("9001", "Dienst A", 0),
    )
    .await;
    let mut urgent = gnl_upsert("9002", "Dienst F", 0);
    urgent["urgent"] = json!(true);
    urgent["agreed_deadline"] = json!("2026-12-07T11:00:00+01:00");
    let f = submit(&server, loket, &urgent).await;
    let c = submit(&server, loket, &gnl_upsert("9003", "Dienst C", 0)).await;
    let b = submit(&server, loket, &gnl_upsert("9004", "Dienst B", 0)).await;
    server.clock.set(at("2026-12-07T09:30:00+01:00"));
    let (status, _) = post(
        &server,
        loket,
        &format!("/mutations/{c}/withdraw"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    approve_at(&server, a, "2026-12-07T10:00:00+01:00").await;
    approve_at(&server, f, "2026-12-07T10:30:00+01:00").await;
    submit_at(
        &server,
        "2026-12-07T12:00:00+01:00",
        gnl_upsert("9005", "Dienst E", 0),
    )
    .await;
    submit_at(
        &server,
        "2026-12-08T09:00:00+01:00",
        gnl_upsert("9006", "Dienst D", 0),
    )
    .await;
    approve_at(&server, b, "2026-12-09T10:00:00+01:00").await;

    let mut server = server;
    for round in ["before the restart", "after the restart"] {
        let m = server.metrics().await;
        promtool_check_metrics(&m).unwrap_or_else(|e| panic!("{round}: {e}"));
        assert_rules_and_dashboard_use_scraped_names(&m);
        let series = |name: &str, labels: &str| format!("stelselnode_{name}{{{labels}}}");
        let gnl = |urgent: &str, slo: &str| {
            series(
                "mutations_completed_total",
                &format!("list=\"gnl\",urgent=\"{urgent}\",slo=\"{slo}\""),
            )
        };
        assert_sample(&m, &gnl("false", "met"), 1.0);
        assert_sample(&m, &gnl("false", "breached"), 1.0);
        assert_sample(&m, &gnl("false", "excluded"), 1.0);
        assert_sample(&m, &gnl("true", "met"), 1.0);
        assert_sample(&m, &gnl("true", "breached"), 0.0);
        let bucket = |le: &str| {
            series(
                "mutation_processing_werkdagen_bucket",
                &format!("list=\"gnl\",urgent=\"false\",le=\"{le}\""),
            )
        };
        assert_sample(&m, &bucket("0.25"), 1.0);
        assert_sample(&m, &bucket("2"), 1.0);
        assert_sample(&m, &bucket("3"), 2.0);
        assert_sample(&m, &bucket("+Inf"), 2.0);
        let plain = "list=\"gnl\",urgent=\"false\"";
        assert_sample(
            &m,
            &series("mutation_processing_werkdagen_sum", plain),
            2.0 + 2.0 / 24.0,
        );
        assert_sample(
            &m,
            &series("mutation_processing_werkdagen_count", plain),
            2.0,
        );
        let none =
            "stelselnode_mutation_processing_werkdagen_sum{list=\"zal\",urgent=\"true\"} 0\n";
        assert!(m.contains(none), "an empty sum is written as 0");
        assert_sample(
            &m,
            &series("mutations_open", "list=\"gnl\",state=\"submitted\""),
            2.0,
        );
        assert_sample(&m, "stelselnode_mutations_at_risk", 1.0);
        assert_sample(&m, "stelselnode_mutations_overdue", 0.0);
        let band = |b: &str| series("mutations_open_by_time_left", &format!("time_left=\"{b}\""));
        assert_sample(&m, &band("0_to_0.5"), 1.0);
        assert_sample(&m, &band("0.5_to_1"), 1.0);
        assert_sample(&m, &band("overdue"), 0.0);
        // E: Monday 12:00 to Wednesday 10:00.
        assert_sample(
            &m,
            "stelselnode_mutation_oldest_open_werkdagen",
            1.0 + 22.0 / 24.0,
        );
        for window in ["rolling", "quarter"] {
            let w = format!("window=\"{window}\"");
            assert_sample(&m, &series("sla_compliance_ratio", &w), 2.0 / 3.0);
            // 5 % of 3 completed, minus 1 breach.
            assert_sample(&m, &series("sla_error_budget_remaining", &w), 0.15 - 1.0);
            assert_sample(
                &m,
                &series("sla_error_budget_remaining_ratio", &w),
                (0.15 - 1.0) / 0.15,
            );
            // D counts as met, E (at risk) as breached: 3 of 5.
            assert_sample(&m, &series("sla_projected_compliance_ratio", &w), 0.6);
        }
        assert_sample(&m, "stelselnode_business_day", 1.0);
        assert_sample(&m, "stelselnode_sla_figures_available", 1.0);
        assert_sample(
            &m,
            "stelselnode_calendar_covered_until",
            at("2029-01-01T00:00:00+01:00").timestamp() as f64,
        );
        let clock = sample(&m, "stelselnode_business_seconds_total");
        // Two hours later on the same werkdag, the business clock is 7200 s on.
        server.clock.advance(Duration::hours(2));
        let later = sample(
            &server.metrics().await,
            "stelselnode_business_seconds_total",
        );
        assert!(
            (later - clock - 7200.0).abs() < 1e-3,
            "{round}: {clock} → {later}"
        );
        server.clock.advance(Duration::hours(-2));
        if round == "before the restart" {
            server = server.restart().await;
        }
    }

    // The mutation's own record and the report say the same.
    let seen = server
        .admin_get(&server.pki.beheer, &format!("/mutations/{b}"))
        .await
        .json();
    assert_eq!(seen["sla"]["outcome"], "breached");
    assert_eq!(seen["sla"]["deadline"], "2026-12-09T08:00:00Z");
    let report = server
        .admin_get(
            &server.pki.beheer,
            "/sla/report?from=2026-12-01&to=2026-12-31",
        )
        .await
        .json();
    let gnl = report["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["list"] == "gnl")
        .unwrap();
    assert_eq!(
        (gnl["met"].as_u64(), gnl["breached"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(gnl["breaches"][0]["id"], b);
    assert_eq!(gnl["exclusions"][0]["reason"], "withdrawn by the submitter");
    let loket_asks = server
        .admin_get(
            &server.pki.loket,
            "/sla/report?from=2026-12-01&to=2026-12-31",
        )
        .await;
    assert_eq!(loket_asks.status, 403);
    let backwards = server
        .admin_get(
            &server.pki.beheer,
            "/sla/report?from=2026-12-31&to=2026-12-01",
        )
        .await;
    assert_eq!(backwards.status, 422);

    // The command line reads the same database and reports the same breach, as CSV.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .args([
            "sla",
            "report",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
        ])
        .args(["--format", "csv"])
        .env("STELSELNODE_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let csv = String::from_utf8(output.stdout).unwrap();
    assert!(csv.contains("summary,gnl,2,1,1,0.6667,"), "{csv}");
    assert!(
        csv.contains(&format!(
            "breach,gnl,,,,,{b},false,2026-12-07T08:00:00+00:00,"
        )),
        "{csv}"
    );
}

/// Every `stelselnode_` series the alert rules and the dashboard use exists in a real scrape,
/// so a renamed metric cannot silently blind them.
fn assert_rules_and_dashboard_use_scraped_names(scrape: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "deploy/prometheus/rules.yml",
        "deploy/grafana/stelselnode-sla.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("stelselnode_") {
            let name: String = rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[start + name.len()..];
            let exposed = scrape
                .lines()
                .any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")));
            assert!(
                exposed,
                "{file} uses {name}, which /metrics does not expose"
            );
        }
    }
}

/// The mutation's notifications as the admin API shows them, by channel.
async fn notifications(server: &TestServer, id: i64) -> Vec<Value> {
    let response = server
        .admin_get(
            &server.pki.beheer,
            &format!("/mutations/{id}/notifications"),
        )
        .await;
    assert_eq!(response.status, 200);
    response.json().as_array().unwrap().clone()
}

/// Runs the SLA task until every notification of `id` is delivered.
async fn until_delivered(server: &TestServer, id: i64) -> Vec<Value> {
    for _ in 0..100 {
        server.app.state().services.sla.tick().await.unwrap();
        let all = notifications(server, id).await;
        if all.iter().all(|n| n["delivered_at"].is_string()) {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not delivered: {:?}", notifications(server, id).await);
}

async fn an_expected_breach_is_mailed_and_posted_exactly_once_across_restarts(db: TestDatabase) {
    // First the channels are down: nothing listens where they point.
    let down = nothing_listens();
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, _, _| {
        config.notify.webhook_url = format!("http://127.0.0.1:{down}/sla");
        config.notify.smtp_url = format!("smtp://127.0.0.1:{down}");
        config.notify.mail_from = "stelselnode@medmij.example".into();
        config.notify.loket_address = "loket@medmij.example".into();
        config.notify.check_interval_seconds = 3600;
    })
    .await;
    server.clock.set(at("2026-12-09T08:00:00+01:00"));
    server.publish_all().await;
    let id = submit_at(
        &server,
        "2026-12-09T09:00:00+01:00",
        gnl_upsert("9101", "Dienst R", 0),
    )
    .await;
    // Not at risk yet: two werkdagen left, nothing queued.
    server.app.state().services.sla.tick().await.unwrap();
    assert!(notifications(&server, id).await.is_empty());

    // Friday 08:00: one hour (1/24 werkdag) left, below the 0.5 threshold.
    server.clock.set(at("2026-12-11T08:00:00+01:00"));
    server.app.state().services.sla.tick().await.unwrap();
    let queued = notifications(&server, id).await;
    let channels: Vec<&str> = queued
        .iter()
        .map(|n| n["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "log", "webhook"]);
    for n in &queued {
        assert_eq!(n["deadline"], "2026-12-11T08:00:00Z");
        if n["channel"] == "log" {
            assert!(n["delivered_at"].is_string());
        } else {
            assert_eq!(n["attempts"], 1, "{n}");
            assert!(n["delivered_at"].is_null());
            assert!(n["last_error"].is_string(), "{n}");
        }
    }

    // The node restarts with the channels up; the stored queue is delivered after the
    // backoff, once.
    let smtp = SmtpServer::start().await;
    let webhook = WebhookReceiver::start();
    let server = server
        .restart_with(|config| {
            config.notify.webhook_url = webhook.url();
            config.notify.smtp_url = smtp.url();
        })
        .await;
    server.clock.advance(Duration::minutes(1));
    let delivered = until_delivered(&server, id).await;
    assert!(
        delivered
            .iter()
            .filter(|n| n["channel"] != "log")
            .all(|n| n["attempts"] == 2)
    );

    // Another restart and more rounds, later: nothing is sent again.
    let server = server.restart().await;
    for _ in 0..3 {
        server.clock.advance(Duration::hours(1));
        server.app.state().services.sla.tick().await.unwrap();
    }
    let bodies = webhook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body = &bodies[0];
    assert_eq!(body["id"], id);
    assert_eq!(body["list"], "gnl");
    assert_eq!(body["entry"], "9101");
    assert_eq!(body["deelnemer"], "Stichting MedMij");
    assert_eq!(body["reference"], "MEDMIJ-400");
    assert_eq!(body["deadline"], "2026-12-11T08:00:00Z");
    assert!((body["werkdagen_left"].as_f64().unwrap() - 1.0 / 24.0).abs() < 1e-6);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("To: loket@medmij.example"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains(&format!("Mutatie {id}")), "{}", mails[0]);
}

async fn mutations_stored_before_the_sla_get_their_deadline_and_outcome_at_start(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.clock.set(at("2026-12-07T08:00:00+01:00"));
    server.publish_all().await;
    let open = submit_at(
        &server,
        "2026-12-07T09:00:00+01:00",
        gnl_upsert("9201", "Dienst O", 0),
    )
    .await;
    let done = submit(
        &server,
        &server.pki.loket,
        &gnl_upsert("9202", "Dienst P", 0),
    )
    .await;
    approve_at(&server, done, "2026-12-10T09:00:00+01:00").await;
    // What a node before the SLA left: no SLA columns at all.
    let server = server
        .restart_after(async |db| {
            execute_sql(
                db,
                "UPDATE mutations SET sla_deadline = NULL, sla_calendar = NULL, \
                 sla_outcome = NULL, sla_completed_at = NULL, sla_werkdagen = NULL",
            )
            .await
            .unwrap();
        })
        .await;
    let read = |id: i64| {
        let server = &server;
        async move {
            server
                .admin_get(&server.pki.beheer, &format!("/mutations/{id}"))
                .await
                .json()["sla"]
                .clone()
        }
    };
    let open = read(open).await;
    assert_eq!(open["deadline"], "2026-12-09T08:00:00Z");
    assert_eq!(open["calendar"], "termijnenwet+decrees-2028-12-31");
    assert!(open["outcome"].is_null());
    let done = read(done).await;
    assert_eq!(done["outcome"], "breached");
    assert!((done["werkdagen"].as_f64().unwrap() - 3.0).abs() < 1e-9);
}
