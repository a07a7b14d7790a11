//! What PGO and XIS nodes receive must not change when the node is made faster (issue 12):
//! for one input — the official example lists, then a sample network, published at fixed
//! instants — every read-API answer (status, headers, body digest) and every signature's
//! signed properties are compared with a record made by the implementation before that
//! work (`golden/served-lists.txt`). ECDSA signature bytes differ per signing by design, so
//! signatures are compared by what they vouch for, after verifying them.
//!
//! `RECORD_SERVED=1` rewrites the record (only when a change of the served bytes is meant).

use chrono::{DateTime, Duration, Utc};

use stelselnode::domain::ListKind;
use stelselnode::import::import_document;
use stelselnode::sample::{SampleSize, network};
use stelselnode::signing::verify_signature;
use stelselnode::tls::NodeAccess;
use stelselnode::xml::render_list;

use super::support::TestDatabase;
use super::support::server::TestServer;

const RECORD: &str = "tests/integration/golden/served-lists.txt";

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// Request variants whose answers are recorded for each current list.
const VARIANTS: [&[(&str, &str)]; 4] = [
    &[],
    &[("Accept-Encoding", "gzip")],
    &[("Accept-Encoding", "gzip;q=0, identity")],
    &[("If-Modified-Since", "Mon, 04 May 2026 08:00:00 GMT")],
];

async fn record_round(server: &TestServer, out: &mut String) {
    let node = Some(&server.pki.node);
    server.until_every_coding_is_made().await;
    for list in ListKind::ALL {
        let current = server.current(list).await;
        let etag = format!("\"{}\"", current.sha256);
        let path = format!("/lists/{list}");
        let gzip = server.node_get(node, &path, &[("Accept-Encoding", "gzip")]);
        let gzip_etag = gzip.await.unwrap().header("etag").unwrap().to_owned();
        let conditional: [&[(&str, &str)]; 2] = [
            &[("If-None-Match", etag.as_str())],
            &[
                ("If-None-Match", gzip_etag.as_str()),
                ("Accept-Encoding", "gzip"),
            ],
        ];
        let legacy = format!("/{}", stelselnode::signing::list_uri(list));
        let paths = [format!("/lists/{list}"), legacy];
        for path in &paths {
            for headers in VARIANTS.iter().chain(&conditional) {
                let answer = server.node_get(node, path, headers).await.unwrap();
                let mut seen: Vec<String> = answer
                    .headers
                    .iter()
                    .filter(|(name, _)| !name.eq_ignore_ascii_case("date"))
                    .map(|(name, value)| format!("{}: {value}", name.to_ascii_lowercase()))
                    .collect();
                seen.sort();
                out.push_str(&format!(
                    "GET {path} {headers:?}\n  {} {} bytes sha256 {}\n  {}\n",
                    answer.status,
                    answer.body.len(),
                    stelselnode::signing::sha256_hex(&answer.body),
                    seen.join("\n  ")
                ));
            }
        }
        // The signature of the current version: verified, then what it vouches for.
        let signature_path = format!("/lists/{list}/versions/{}/signature", current.volgnummer);
        let signature = server.node_get(node, &signature_path, &[]).await.unwrap();
        let document = server.node_get(node, &paths[0], &[]).await.unwrap();
        let check = verify_signature(
            &signature.body,
            &document.body,
            &[server.pki.ca.certificate().clone()],
            Utc::now(),
        )
        .expect("the served signature verifies over the served bytes");
        out.push_str(&format!(
            "GET {signature_path}\n  {} vouches for {} {:?}\n",
            signature.status, check.list_sha256, check.properties
        ));
    }
}

async fn served_lists_match_the_recorded_implementation(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::TrustedCa).await;
    let mut record = String::new();

    // The official examples (escaped and non-ASCII text), published at a fixed instant.
    server.clock.set(instant("2026-05-04T08:00:00Z"));
    server.publish_all().await;
    record_round(&server, &mut record).await;

    // A sample network replaces them, published an hour later.
    let at = instant("2026-05-04T09:00:00Z");
    let net = network(SampleSize::realistic(300), at - Duration::minutes(5));
    for lijst in [&net.whitelist, &net.gnl, &net.ocl, &net.zal] {
        import_document(
            server.db.storage.as_ref(),
            lijst.kind(),
            &render_list(lijst),
            "cli:test",
            at,
        )
        .await
        .unwrap();
    }
    server.clock.set(at);
    server.publish_all().await;
    record_round(&server, &mut record).await;

    if std::env::var_os("RECORD_SERVED").is_some() {
        std::fs::write(RECORD, &record).unwrap();
    }
    let recorded = std::fs::read_to_string(RECORD).expect("the record of served answers");
    for (n, (now, then)) in record.lines().zip(recorded.lines()).enumerate() {
        assert_eq!(now, then, "line {} of {RECORD} differs", n + 1);
    }
    assert_eq!(record.lines().count(), recorded.lines().count());
}

on_both_backends!(served_lists_match_the_recorded_implementation);
