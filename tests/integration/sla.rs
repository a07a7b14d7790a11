//! The 2-werkdagen SLA end to end on both backends (issue 13): mutations submitted, decided
//! and published over the admin listener at instants a manual clock sets; `/metrics` read
//! back against values computed by hand, and again after a restart; the report.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::mutations::gnl_upsert;
use super::support::server::{TestServer, approve, post, submit};

on_both_backends!(the_sla_metrics_equal_hand_computed_values_also_after_a_restart);

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
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
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
}
