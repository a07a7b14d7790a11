//! What an attacker or a careless client sends the admin listener (issue 11, findings 5 and
//! 6), on both backends: every answer is JSON, nothing panics or answers 5xx, every request
//! is audited however malformed, and free text holds nothing that shows as something else.
//! And an expired CRL makes the node not ready.

use serde_json::{Value, json};

use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::http_client::{Response, plain_get};
use super::support::mutations::{NEW_HOST, gnl_upsert, whitelist_upsert};
use super::support::server::TestServer;

on_both_backends!(
    malformed_requests_get_json_answers_and_are_audited,
    free_text_with_deceptive_characters_is_refused_at_its_field,
    an_expired_crl_makes_the_node_not_ready,
);

fn assert_json_error(response: &Response, status: u16) -> Value {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json"),
        "{}",
        response.text()
    );
    let body = response.json();
    assert!(body["message"].is_string(), "{body}");
    body
}

async fn refused_records(server: &TestServer, action: &str) -> Vec<Value> {
    let query = format!(
        "/audit?outcome=refused&action={}",
        action.replace(' ', "%20")
    );
    let records = server.admin_get(&server.pki.beheer, &query).await.json();
    records["records"].as_array().unwrap().clone()
}

async fn malformed_requests_get_json_answers_and_are_audited(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let (loket, beheer) = (&server.pki.loket, &server.pki.beheer);
    // Finding 5: a multi-byte last character in an age panicked a worker.
    let age = server.admin_get(loket, "/mutations?max_age=1%C3%A9").await;
    assert_json_error(&age, 400);
    // `/ui/` as people type it: the application, for every staff role (issue 21).
    for staff in [loket, beheer] {
        let slash = server.admin_get(staff, "/ui/").await;
        assert_eq!(slash.status, 308, "{}", slash.text());
        assert_eq!(slash.header("Location"), Some("/ui"));
    }
    // An id that is not a number, a route that does not exist, a method a route does not take.
    assert_json_error(&server.admin_get(loket, "/mutations/abc").await, 404);
    assert_json_error(&server.admin_get(beheer, "/no/such/route").await, 404);
    let trace = server.admin(loket, "TRACE", "/mutations", None).await;
    assert_json_error(&trace, 405);
    assert_eq!(trace.header("Allow"), Some("POST, GET"));
    // A NUL in a path, a query and a body: refused, never a 500 (PostgreSQL takes no NUL).
    assert_json_error(&server.admin_get(loket, "/entries/zal/%00").await, 404);
    assert_json_error(
        &server.admin_get(loket, "/mutations?submitter=a%00b").await,
        400,
    );
    let id = server
        .admin(
            loket,
            "POST",
            "/mutations",
            Some(&whitelist_upsert(NEW_HOST, 0)),
        )
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let nul_reason = json!({ "reason": "onvolledig\u{0}" });
    let rejected = server
        .admin(
            beheer,
            "POST",
            &format!("/mutations/{id}/reject"),
            Some(&nul_reason),
        )
        .await;
    let body = assert_json_error(&rejected, 422);
    assert_eq!(body["violations"][0]["path"], "$.reason");
    let not_json = server
        .admin(beheer, "POST", &format!("/mutations/{id}/reject"), None)
        .await;
    assert_json_error(&not_json, 400);

    // Every one of them is in the audit log, the NUL written so that it can be read. (The
    // action filter is a prefix: the age, the submitter and the unparsable id.)
    assert_eq!(refused_records(&server, "GET /mutations").await.len(), 3);
    let entry = refused_records(&server, "GET /entries/{list}/{key}").await;
    assert_eq!(entry.len(), 1, "{entry:?}");
    assert_eq!(entry[0]["object"], "zal/\\u{0000}");
    assert_eq!(refused_records(&server, "TRACE /mutations").await.len(), 1);
    assert_eq!(
        refused_records(&server, "GET /no/such/route").await.len(),
        1
    );
    assert_eq!(
        refused_records(&server, "POST /mutations/{id}/reject")
            .await
            .len(),
        2
    );
    server.app.stop().await;
}

async fn free_text_with_deceptive_characters_is_refused_at_its_field(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let loket = &server.pki.loket;
    let mut right_to_left = whitelist_upsert(NEW_HOST, 0);
    right_to_left["on_behalf_of"] = json!("Een PGO \u{202E}VB");
    let zero_width = gnl_upsert("99", "Labuit\u{200B}slagen", 0);
    for (body, path) in [
        (right_to_left, "$.on_behalf_of"),
        (zero_width, "$.entry.weergavenaam"),
    ] {
        let refused = server.admin(loket, "POST", "/mutations", Some(&body)).await;
        let refused = assert_json_error(&refused, 422);
        assert_eq!(refused["violations"][0]["path"], path, "{refused}");
        assert_eq!(refused["violations"][0]["rule"], "character", "{refused}");
    }
    // Text that only differs in its Unicode form is stored in one form (NFC).
    let mut decomposed = whitelist_upsert(NEW_HOST, 0);
    decomposed["on_behalf_of"] = json!("Cafe\u{0301} Gezond");
    let stored = server
        .admin(loket, "POST", "/mutations", Some(&decomposed))
        .await;
    assert_eq!(stored.status, 201, "{}", stored.text());
    assert_eq!(stored.json()["on_behalf_of"], "Caf\u{e9} Gezond");
    server.app.stop().await;
}

async fn an_expired_crl_makes_the_node_not_ready(db: TestDatabase) {
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, pki, dir| {
        let crl = dir.join("expired.crl.pem");
        std::fs::write(
            &crl,
            pki.ca.crl_pem((2024, 1, 1), (2024, 2, 1), &[]).unwrap(),
        )
        .unwrap();
        config.server.crl_files = vec![crl.display().to_string()];
    })
    .await;
    server.publish_all().await;
    let ready = plain_get(server.app.ops_address(), "/readyz").await;
    assert_eq!(ready.status, 503);
    let problems = ready.json()["problems"].to_string();
    assert!(problems.contains("expired.crl.pem expired"), "{problems}");
    let metrics = plain_get(server.app.ops_address(), "/metrics").await.text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("stelselnode_crl_seconds_until_next_update{"))
        .expect("the CRL metric");
    let seconds: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds < 0, "{line}");
    assert!(
        metrics.contains("stelselnode_signing_certificate_seconds_until_expiry "),
        "the signing certificate is watched the same way"
    );
    // Clients are still served: an expired CRL is a warning to operators, not an outage.
    let served = server
        .node_get(Some(&server.pki.node), "/lists/zal", &[])
        .await
        .unwrap();
    assert_eq!(served.status, 200);
    server.app.stop().await;
}
