//! The consumer verifier (`stelselnode verify`) as a script would run it.

use std::path::Path;
use std::process::Output;

use chrono::{Duration, Utc};

use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{IndexedVersion, ListKind};

use super::support::node::{node, published};
use super::support::{sqlite, verify_command};

fn verify(dir: &Path, list: &[u8], signature: &[u8], extra: &[&str]) -> Output {
    std::fs::write(dir.join("list.xml"), list).unwrap();
    std::fs::write(dir.join("list.sig.xml"), signature).unwrap();
    verify_command(dir).args(extra).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_verifier_accepts_refuses_and_remembers() {
    let node = node(sqlite().await, KeyAlgorithm::Rsa2048).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), node.signer.ca.certificate_pem()).unwrap();

    // A version published a week and a day ago has expired.
    node.clock.set(Utc::now() - Duration::days(8));
    let old = node.publish(ListKind::Zal).await;
    let (old_list, old_signature) = published(&node, ListKind::Zal, old.volgnummer).await;
    let expired = verify(dir.path(), &old_list, &old_signature, &[]);
    assert_eq!(expired.status.code(), Some(5), "{}", stdout(&expired));
    assert!(stdout(&expired).contains("expired at"));

    // Two current versions, a minute apart.
    node.clock.set(Utc::now() - Duration::minutes(2));
    let v1 = node.publish(ListKind::Zal).await;
    node.clock.set(Utc::now() - Duration::minutes(1));
    let v2 = node.publish(ListKind::Zal).await;
    let (list1, signature1) = published(&node, ListKind::Zal, v1.volgnummer).await;
    let (list2, signature2) = published(&node, ListKind::Zal, v2.volgnummer).await;

    let state = ["--state", "state.json"];
    let ok = verify(dir.path(), &list2, &signature2, &state);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).starts_with(&format!("OK zal Volgnummer {}", v2.volgnummer)));
    let again = verify(dir.path(), &list2, &signature2, &state);
    assert_eq!(
        again.status.code(),
        Some(0),
        "the same version may be checked again"
    );

    // An older version after a newer one was accepted is a rollback.
    let rollback = verify(dir.path(), &list1, &signature1, &state);
    assert_eq!(rollback.status.code(), Some(6), "{}", stdout(&rollback));

    // One byte changed.
    let mut tampered = list2.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x20;
    let refused = verify(dir.path(), &tampered, &signature2, &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", stdout(&refused));

    // With the node's version index, the superseded version is reported in grace.
    let now = Utc::now();
    let index: Vec<IndexedVersion> = node
        .db
        .storage
        .versions(ListKind::Zal)
        .await
        .unwrap()
        .into_iter()
        .map(|record| IndexedVersion {
            status: record.status_at(now),
            record,
            log_index: None,
        })
        .collect();
    let index = serde_json::to_vec(&index).unwrap();
    std::fs::write(dir.path().join("versions.json"), index).unwrap();
    let grace = verify(
        dir.path(),
        &list1,
        &signature1,
        &["--versions", "versions.json"],
    );
    assert_eq!(grace.status.code(), Some(3), "{}", stdout(&grace));
    assert!(stdout(&grace).starts_with("GRACE"));

    // Files from elsewhere are read only up to a bound: a signature of 2 MB, or one that
    // never ends, is refused before it fills memory.
    let huge = vec![b' '; 2 * 1024 * 1024];
    let refused = verify(dir.path(), &list1, &huge, &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is larger than 1048576 bytes"),
        "{refused:?}"
    );
    let endless = std::process::Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .current_dir(dir.path())
        .args([
            "verify",
            "--list-file",
            "list.xml",
            "--signature",
            "/dev/zero",
        ])
        .args(["--ca", "ca.pem"])
        .output()
        .unwrap();
    assert_eq!(endless.status.code(), Some(1), "{endless:?}");
}

/// A node that lost its database and reused the Volgnummers it had published (issue 23):
/// the consumer refuses the reused one (rollback) and the one after it (fork), and accepts
/// the legitimate next version.
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_volgnummer_and_the_version_after_it_are_refused() {
    let node_a = node(sqlite().await, KeyAlgorithm::EcdsaP256).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        node_a.signer.ca.certificate_pem(),
    )
    .unwrap();
    let state = ["--state", "state.json"];
    node_a.clock.set(Utc::now() - Duration::minutes(3));
    let accepted = node_a.publish(ListKind::Whitelist).await;
    let (list, signature) = published(&node_a, ListKind::Whitelist, accepted.volgnummer).await;
    assert_eq!(
        verify(dir.path(), &list, &signature, &state).status.code(),
        Some(0)
    );

    // The same network's lists, numbered again from where node A started: its version of
    // that Volgnummer has other bytes, and the next names it, not the accepted one.
    let node_b = node(sqlite().await, KeyAlgorithm::EcdsaP256).await;
    let forked = tempfile::tempdir().unwrap();
    std::fs::write(
        forked.path().join("ca.pem"),
        node_b.signer.ca.certificate_pem(),
    )
    .unwrap();
    std::fs::copy(
        dir.path().join("state.json"),
        forked.path().join("state.json"),
    )
    .unwrap();
    node_b.clock.set(Utc::now() - Duration::minutes(2));
    let reused = node_b.publish(ListKind::Whitelist).await;
    node_b.clock.set(Utc::now() - Duration::minutes(1));
    let after = node_b.publish(ListKind::Whitelist).await;
    assert_eq!(reused.volgnummer, accepted.volgnummer);
    for (version, what) in [(&reused, "rollback"), (&after, "fork")] {
        let (list, signature) = published(&node_b, ListKind::Whitelist, version.volgnummer).await;
        let refused = verify(forked.path(), &list, &signature, &state);
        assert_eq!(refused.status.code(), Some(6), "{}", stdout(&refused));
        assert!(stdout(&refused).contains(what), "{}", stdout(&refused));
    }

    // Node A's own next version follows the accepted one.
    node_a.clock.set(Utc::now() - Duration::minutes(1));
    let next = node_a.publish(ListKind::Whitelist).await;
    let (list, signature) = published(&node_a, ListKind::Whitelist, next.volgnummer).await;
    let ok = verify(dir.path(), &list, &signature, &state);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
}
