//! The HTTPS server in-process, over real mutual TLS with certificates made here.

use std::io::Read;

use chrono::Utc;

use stelselnode::devpki::{DevCa, KeyAlgorithm, Purpose};
use stelselnode::domain::EntryChange;
use stelselnode::domain::{ListKind, Volgnummer};
use stelselnode::signing::verify_signature;
use stelselnode::storage::AuditQuery;
use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::http_client::{connector, plain_get, request};
use super::support::server::{NODE_HOST, TestServer};

on_both_backends!(
    only_whitelisted_nodes_of_the_trusted_ca_get_through,
    removing_a_host_from_the_whitelist_locks_it_out,
    the_read_api_serves_exact_bytes_with_validators,
    archives_signatures_diffs_and_the_honoured_query,
    admin_routes_need_their_role_and_refusals_are_audited,
    readiness_fails_closed_until_every_list_is_published,
    the_node_listener_counts_its_answers_for_the_availability_sli,
    a_reload_replaces_the_server_certificate_without_a_restart,
    a_restarted_node_checks_its_current_versions_before_the_first_approval,
);

/// Issue 25: after a start the first approval's check reads only the entries it changes, as
/// every later one does: the node checks its current versions once while it warms up.
async fn a_restarted_node_checks_its_current_versions_before_the_first_approval(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let server = server.restart().await;
    let publisher = &server.app.state().services.publisher;
    let started = std::time::Instant::now();
    while !ListKind::ALL
        .into_iter()
        .all(|list| publisher.remembers_checked_entries(list))
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the node did not check its current versions"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.app.stop().await;
}

async fn only_whitelisted_nodes_of_the_trusted_ca_get_through(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let no_certificate = server.node_get(None, "/lists/zal", &[]).await;
    assert!(no_certificate.is_err(), "{no_certificate:?}");
    let foreign = server
        .node_get(Some(&pki.foreign_node), "/lists/zal", &[])
        .await;
    assert!(foreign.is_err(), "{foreign:?}");
    let stranger = server
        .node_get(Some(&pki.stranger), "/lists/zal", &[])
        .await
        .unwrap_err();
    assert!(
        stranger.contains("AccessDenied"),
        "expected an access_denied alert, got: {stranger}"
    );
    let ok = server
        .node_get(Some(&pki.node), "/lists/zal", &[])
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    // In test environments the Whitelist check can be relaxed to "any certificate of the CA".
    server.app.stop().await;
}

async fn removing_a_host_from_the_whitelist_locks_it_out(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    assert_eq!(
        server
            .node_get(Some(&server.pki.node), "/lists/whitelist", &[])
            .await
            .unwrap()
            .status,
        200
    );
    // The OCL refers to the host: remove it there first, then from the Whitelist.
    let storage = server.db.storage.clone();
    let ocl = storage.working_state(ListKind::Ocl).await.unwrap();
    storage
        .apply_change(
            &EntryChange::delete(ListKind::Ocl, NODE_HOST, ocl.version_of(NODE_HOST)),
            Utc::now(),
        )
        .await
        .unwrap();
    server.publish(ListKind::Ocl).await;
    let whitelist = storage.working_state(ListKind::Whitelist).await.unwrap();
    storage
        .apply_change(
            &EntryChange::delete(
                ListKind::Whitelist,
                NODE_HOST,
                whitelist.version_of(NODE_HOST),
            ),
            Utc::now(),
        )
        .await
        .unwrap();
    server.publish(ListKind::Whitelist).await;
    let refused = server
        .node_get(Some(&server.pki.node), "/lists/whitelist", &[])
        .await
        .unwrap_err();
    assert!(refused.contains("AccessDenied"), "{refused}");
    server.app.stop().await;
}

async fn the_read_api_serves_exact_bytes_with_validators(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let node = Some(&server.pki.node);
    let current = server
        .db
        .storage
        .current_version(ListKind::Zal)
        .await
        .unwrap()
        .unwrap();
    let exact = server.stored_bytes(ListKind::Zal, current.volgnummer).await;

    for path in [
        "/lists/zal",
        "/MedMij_Zorgaanbiederslijst.xml",
        "/MedMij_Zorgaanbiederslijst.xml?api=1",
        "/MedMij_Zorgaanbiederslijst.xml?api=2",
    ] {
        let response = server.node_get(node, path, &[]).await.unwrap();
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.body, exact, "{path}: the exact published bytes");
        assert_eq!(
            response.header("content-type"),
            Some("application/xml"),
            "no parameters"
        );
        assert_eq!(
            response.header("etag"),
            Some(format!("\"{}\"", current.sha256).as_str())
        );
        assert!(
            response
                .header("content-digest")
                .unwrap()
                .starts_with("sha-256=:")
        );
        let max_age: i64 = response
            .header("cache-control")
            .unwrap()
            .trim_start_matches("public, max-age=")
            .parse()
            .unwrap();
        assert!((1..=300).contains(&max_age));
        assert!(response.header("last-modified").unwrap().ends_with("GMT"));
    }
    let unknown = server
        .node_get(node, "/MedMij_Zorgaanbiederslijst.xml?api=9", &[])
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.text().contains("api=9 is not served here"),
        "{}",
        unknown.text()
    );

    let etag = format!("\"{}\"", current.sha256);
    let not_modified = server
        .node_get(node, "/lists/zal", &[("If-None-Match", &etag)])
        .await
        .unwrap();
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    let last_modified = server
        .node_get(node, "/lists/zal", &[])
        .await
        .unwrap()
        .header("last-modified")
        .unwrap()
        .to_owned();
    assert_eq!(
        server
            .node_get(node, "/lists/zal", &[("If-Modified-Since", &last_modified)])
            .await
            .unwrap()
            .status,
        304
    );
    assert_eq!(
        server
            .node_get(node, "/lists/zal", &[("If-None-Match", "\"other\"")])
            .await
            .unwrap()
            .status,
        200
    );

    let gzipped = server
        .node_get(node, "/lists/zal", &[("Accept-Encoding", "gzip")])
        .await
        .unwrap();
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(gzipped.body.as_slice())
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, exact);
    let gzip_etag = gzipped.header("etag").unwrap().to_owned();
    assert_ne!(gzip_etag, etag, "a strong ETag per representation");
    assert_eq!(
        server
            .node_get(
                node,
                "/lists/zal",
                &[("Accept-Encoding", "gzip"), ("If-None-Match", &gzip_etag)]
            )
            .await
            .unwrap()
            .status,
        304
    );
    server.app.stop().await;
}

async fn archives_signatures_diffs_and_the_honoured_query(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let node = Some(&server.pki.node);
    let storage = server.db.storage.clone();
    // Version 8 of the ZAL drops radiologencentraalflevoland.
    let zal = storage.working_state(ListKind::Zal).await.unwrap();
    let key = "radiologencentraalflevoland@medmij";
    storage
        .apply_change(
            &EntryChange::delete(ListKind::Zal, key, zal.version_of(key)),
            Utc::now(),
        )
        .await
        .unwrap();
    server.clock.advance(chrono::Duration::seconds(2));
    let v8 = server.publish(ListKind::Zal).await;
    assert_eq!(v8.volgnummer.get(), 8);

    let index = server
        .node_get(node, "/lists/zal/versions", &[])
        .await
        .unwrap()
        .json();
    let index = index.as_array().unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index[0]["volgnummer"], 7);
    assert_eq!(index[0]["status"], "grace");
    assert_eq!(index[1]["status"], "current");
    assert!(index[0]["grace_until"].is_string() && index[0]["sha256"].is_string());

    let archived = server
        .node_get(node, "/lists/zal/versions/7", &[])
        .await
        .unwrap();
    assert_eq!(archived.status, 200);
    assert_eq!(
        archived.body,
        server
            .stored_bytes(ListKind::Zal, Volgnummer::new(7).unwrap())
            .await
    );
    assert!(
        archived
            .header("cache-control")
            .unwrap()
            .contains("immutable")
    );
    let signature = server
        .node_get(node, "/lists/zal/versions/7/signature", &[])
        .await
        .unwrap();
    let check = verify_signature(
        &signature.body,
        &archived.body,
        &[server.pki.ca.certificate().clone()],
        Utc::now(),
    )
    .unwrap();
    assert_eq!(check.properties.volgnummer.get(), 7);
    assert_eq!(
        server
            .node_get(node, "/lists/zal/versions/99", &[])
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        server
            .node_get(node, "/lists/nope", &[])
            .await
            .unwrap()
            .status,
        404
    );

    let diff = server
        .node_get(node, "/lists/zal/diff?from=7&to=8", &[])
        .await
        .unwrap()
        .json();
    assert_eq!(diff["removed"][0]["key"], key);
    assert_eq!(diff["added"].as_array().unwrap().len(), 0);
    assert_eq!(diff["changed"].as_array().unwrap().len(), 0);

    let honoured = server
        .node_get(
            node,
            "/lists/zal/honoured?zorgaanbieder=radiologencentraalflevoland@medmij&gegevensdienst=1",
            &[],
        )
        .await
        .unwrap()
        .json();
    assert_eq!(
        honoured["honoured"], true,
        "still in its grace hour: {honoured}"
    );
    let later = (Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let after = server.node_get(node, &format!("/lists/zal/honoured?zorgaanbieder=radiologencentraalflevoland@medmij&gegevensdienst=1&at={later}"), &[]).await.unwrap().json();
    assert_eq!(after["honoured"], false, "{after}");
    let bad = server
        .node_get(
            node,
            "/lists/zal/honoured?zorgaanbieder=NOPE&gegevensdienst=1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    server.app.stop().await;
}

async fn admin_routes_need_their_role_and_refusals_are_audited(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    assert_eq!(
        server.admin_get(&pki.beheer, "/lists/zal").await.status,
        200
    );
    for who in [&pki.loket, &pki.node, &pki.stranger] {
        for path in [
            "/lists/zal",
            "/lists/zal/versions",
            "/MedMij_Whitelist.xml",
            "/lists/zal/versions/7/signature",
        ] {
            let response = server.admin_get(who, path).await;
            assert_eq!(response.status, 403, "{path}");
        }
    }
    let audit = server
        .db
        .storage
        .audit_records(&AuditQuery::newest(100))
        .await
        .unwrap();
    let refused: Vec<_> = audit
        .iter()
        .filter(|r| r.reason.as_deref() == Some("the beheer role is required"))
        .collect();
    assert_eq!(refused.len(), 12);
    assert!(
        refused
            .iter()
            .any(|r| r.actor_subject == "CN=loket-1" && r.action == "GET /lists/{list}")
    );
    server.app.stop().await;
}

async fn readiness_fails_closed_until_every_list_is_published(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::TrustedCa).await;
    let ops = server.app.ops_address();
    assert_eq!(plain_get(ops, "/healthz").await.status, 200);
    let not_ready = plain_get(ops, "/readyz").await;
    assert_eq!(not_ready.status, 503);
    assert!(
        not_ready.text().contains("zal: no signed current version"),
        "{}",
        not_ready.text()
    );
    // With the relaxed access any certificate of the CA may read, but there is nothing yet.
    assert_eq!(
        server
            .node_get(Some(&server.pki.stranger), "/lists/zal", &[])
            .await
            .unwrap()
            .status,
        503
    );
    server.publish(ListKind::Whitelist).await;
    assert_eq!(
        plain_get(ops, "/readyz").await.status,
        503,
        "three lists still missing"
    );
    server.publish_all().await;
    let ready = plain_get(ops, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(
        server
            .node_get(Some(&server.pki.stranger), "/lists/zal", &[])
            .await
            .unwrap()
            .status,
        200
    );
    let metrics = plain_get(ops, "/metrics").await.text();
    assert!(
        metrics.contains("stelselnode_list_volgnummer{list=\"zal\"} 7"),
        "{metrics}"
    );
    assert!(metrics.contains("stelselnode_http_requests_total{listener=\"node\",route=\"/lists/{list}\",status=\"200\"}"), "{metrics}");
    // Past expiry the node fails closed.
    server.clock.advance(chrono::Duration::days(8));
    assert_eq!(plain_get(ops, "/readyz").await.status, 503);
    assert_eq!(
        server
            .node_get(Some(&server.pki.stranger), "/lists/zal", &[])
            .await
            .unwrap()
            .status,
        503
    );
    server.app.stop().await;
}

/// Issue 24, item 5: 2xx and 3xx count good, 5xx bad (an expired list with its own reason),
/// and the client's own mistakes (4xx) not at all.
async fn the_node_listener_counts_its_answers_for_the_availability_sli(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::TrustedCa).await;
    let node = Some(&server.pki.node);
    let get = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            server.node_get(node, path, &headers).await.unwrap()
        }
    };
    // Nothing published yet: 503, a bad answer.
    assert_eq!(get("/lists/zal", vec![]).await.status, 503);
    server.publish_all().await;
    let fetched = get("/lists/zal", vec![]).await;
    assert_eq!(fetched.status, 200);
    let etag = fetched.header("etag").unwrap().to_owned();
    assert_eq!(
        get("/lists/zal", vec![("If-None-Match", etag)])
            .await
            .status,
        304
    );
    // The client's own mistakes are not the node's unavailability.
    assert_eq!(get("/lists/nope", vec![]).await.status, 404);
    assert_eq!(get("/lists/zal/versions/999999", vec![]).await.status, 404);
    assert_eq!(node_answers(&server).await, [2, 0, 1]);
    // Past expiry the node fails closed, and that is an outage.
    server.clock.advance(chrono::Duration::days(8));
    assert_eq!(get("/lists/zal", vec![]).await.status, 503);
    assert_eq!(node_answers(&server).await, [2, 1, 1]);
    server.app.stop().await;
}

/// `stelselnode_node_answers_total`: good, bad for an expired list, bad for another 5xx.
async fn node_answers(server: &TestServer) -> [u64; 3] {
    let metrics = server.metrics().await;
    [("good", ""), ("bad", "expired"), ("bad", "server_error")].map(|(outcome, reason)| {
        let series =
            format!("stelselnode_node_answers_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .unwrap_or_else(|| panic!("{series} in {metrics}"))
            .parse()
            .unwrap()
    })
}

async fn a_reload_replaces_the_server_certificate_without_a_restart(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let node = Some(&server.pki.node);
    assert_eq!(
        server
            .node_get(node, "/lists/gnl", &[])
            .await
            .unwrap()
            .status,
        200
    );
    // A new server certificate from a new CA replaces the files, then a reload.
    let new_ca = DevCa::new("Renewed server CA").unwrap();
    let renewed = new_ca
        .issue(
            &Purpose::Server(vec!["localhost".into()]),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
    std::fs::write(
        server.dir.path().join("server.pem"),
        &renewed.certificate_pem,
    )
    .unwrap();
    std::fs::write(server.dir.path().join("server.key"), &renewed.key_pem).unwrap();
    server.app.reload().unwrap();
    let trusting_old = server.node_get(node, "/lists/gnl", &[]).await;
    assert!(
        trusting_old.is_err(),
        "the old certificate is gone: {trusting_old:?}"
    );
    let trusting_new = request(
        &connector(new_ca.certificate(), node),
        server.app.node_address(),
        "GET",
        "/lists/gnl",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(trusting_new.status, 200);
    // A broken file is refused and the running certificate stays.
    std::fs::write(server.dir.path().join("server.key"), "not a key").unwrap();
    assert!(server.app.reload().is_err());
    let still = request(
        &connector(new_ca.certificate(), node),
        server.app.node_address(),
        "GET",
        "/lists/gnl",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(still.status, 200);
    server.app.stop().await;
}
