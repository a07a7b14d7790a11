//! Content codings of the served lists (issue 25, item 1): gzip at its best level, brotli
//! and zstd besides identity, chosen by `Accept-Encoding`, each with its own strong ETag,
//! `Content-Digest` and 304, and `Content-Type` exactly `application/xml`. Every coding is
//! decoded by the real decoders (`gzip -d`, `brotli -d`, `zstd -d`) back to the signed bytes,
//! and curl `--compressed` gets those bytes too.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use stelselnode::domain::ListKind;
use stelselnode::server::{Encoding, ServedVersion};
use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::server::TestServer;

on_both_backends!(every_coding_decodes_to_the_signed_bytes_with_its_own_validators);

/// `bytes` through a real decoder (`program -d -c`).
fn decoded_by(program: &str, bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(["-d", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (scripts/test installs it): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

async fn every_coding_decodes_to_the_signed_bytes_with_its_own_validators(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    server.until_every_coding_is_made().await;
    let node = Some(&server.pki.node);
    for list in ListKind::ALL {
        let current = server.current(list).await;
        let legacy = format!("/{}", stelselnode::signing::list_uri(list));
        for path in [format!("/lists/{list}"), legacy] {
            let identity = server.node_get(node, &path, &[]).await.unwrap();
            assert_eq!(identity.status, 200);
            assert_eq!(identity.header("content-encoding"), None);
            assert_eq!(
                stelselnode::signing::sha256_hex(&identity.body),
                current.sha256,
                "identity is the signed bytes"
            );
            let mut etags = vec![identity.header("etag").unwrap().to_owned()];
            for (token, decoder) in [("gzip", "gzip"), ("br", "brotli"), ("zstd", "zstd")] {
                let answer = server
                    .node_get(node, &path, &[("Accept-Encoding", token)])
                    .await
                    .unwrap();
                assert_eq!(answer.status, 200);
                assert_eq!(answer.header("content-encoding"), Some(token), "{path}");
                assert_eq!(answer.header("content-type"), Some("application/xml"));
                assert_eq!(answer.header("vary"), Some("Accept-Encoding"));
                let digest = format!("sha-256=:{}:", BASE64.encode(Sha256::digest(&answer.body)));
                assert_eq!(
                    answer.header("content-digest"),
                    Some(digest.as_str()),
                    "{token}"
                );
                assert!(answer.body.len() < identity.body.len() || identity.body.len() < 2048);
                assert_eq!(
                    decoded_by(decoder, &answer.body),
                    identity.body,
                    "{token} of {path}"
                );
                let etag = answer.header("etag").unwrap().to_owned();
                assert!(
                    !etags.contains(&etag),
                    "{etag}: one strong ETag per representation"
                );
                // Named by its own bytes too: another compressor's bytes get another ETag.
                let coded = stelselnode::signing::sha256_hex(&answer.body);
                assert_eq!(
                    etag,
                    format!("\"{}-{token}-{}\"", current.sha256, &coded[..16])
                );
                let again = server
                    .node_get(
                        node,
                        &path,
                        &[("Accept-Encoding", token), ("If-None-Match", &etag)],
                    )
                    .await
                    .unwrap();
                assert_eq!(again.status, 304);
                assert_eq!(again.header("etag"), Some(etag.as_str()));
                etags.push(etag);
            }
            // A client holding the fast gzip served before the best one was made: 304, under
            // the ETag of what it holds (not the best gzip's).
            let stored = server.db.storage.version(list, current.volgnummer).await;
            let fast = ServedVersion::from_stored(&stored.unwrap().unwrap(), true)
                .unwrap()
                .representation(Encoding::Gzip)
                .unwrap()
                .etag
                .clone();
            assert!(!etags.contains(&fast), "{fast}: the fast gzip is its own");
            let kept = server
                .node_get(
                    node,
                    &path,
                    &[("Accept-Encoding", "gzip"), ("If-None-Match", &fast)],
                )
                .await
                .unwrap();
            assert_eq!(kept.status, 304);
            assert_eq!(kept.header("etag"), Some(fast.as_str()));
            // The client names several: the smallest of those it likes best.
            let preferred = server
                .node_get(
                    node,
                    &path,
                    &[("Accept-Encoding", "gzip;q=0.9, br, zstd;q=0.5")],
                )
                .await
                .unwrap();
            assert_eq!(preferred.header("content-encoding"), Some("br"));
        }
    }
    a_real_client_gets_the_signed_bytes(&server).await;
    server.app.stop().await;
}

/// curl `--compressed`, which asks for every coding it has (gzip, br and zstd in Debian's).
async fn a_real_client_gets_the_signed_bytes(server: &TestServer) {
    let dir = server.dir.path();
    std::fs::write(dir.join("curl-node.pem"), &server.pki.node.certificate_pem).unwrap();
    std::fs::write(dir.join("curl-node.key"), &server.pki.node.key_pem).unwrap();
    let zal = server.current(ListKind::Zal).await;
    let url = format!(
        "https://localhost:{}/lists/zal",
        server.app.node_address().port()
    );
    let output = tokio::task::spawn_blocking({
        let dir = dir.to_owned();
        move || {
            Command::new("curl")
                .args(["--silent", "--show-error", "--fail", "--compressed"])
                .arg("--cacert")
                .arg(dir.join("ca.pem"))
                .arg("--cert")
                .arg(dir.join("curl-node.pem"))
                .arg("--key")
                .arg(dir.join("curl-node.key"))
                .args(["--write-out", "%header{content-encoding}", "--output"])
                .arg(dir.join("curl-zal.xml"))
                .arg(url)
                .output()
                .expect("curl (scripts/test installs it)")
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = std::fs::read(dir.join("curl-zal.xml")).unwrap();
    assert_eq!(stelselnode::signing::sha256_hex(&body), zal.sha256);
    let coding = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        ["gzip", "br", "zstd"].contains(&coding.as_str()),
        "curl got {coding:?}"
    );
}
