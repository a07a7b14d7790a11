//! Witnesses of the transparency log (issue 26, C2SP tlog-witness) against a real witness:
//! `siglog`'s from crates.io, as processes. The node sends each new checkpoint with its
//! consistency proof, serves the cosignatures it gets, finds a witness's size again after a
//! restart (409), goes on without a witness that is down and catches up when it is back; a
//! consumer requires k of n cosignatures (exit 9 short of that); and a witness refuses the
//! checkpoint of a second history.

use std::path::Path;
use std::time::{Duration, Instant};

use stelselnode::domain::ListKind;
use stelselnode::tls::NodeAccess;
use stelselnode::transparency::generate_note_key;

use super::support::TestDatabase;
use super::support::node::LOG_ORIGIN;
use super::support::server::TestServer;
use super::support::witness::SiglogWitness;
use super::transparency::fetch_and_verify;

on_both_backends!(
    witnesses_cosign_each_new_checkpoint_and_consumers_require_k_of_n,
    a_witness_refuses_the_checkpoint_of_a_second_history,
);

/// A log key written into `dir` (`log.key`), and its verifier key.
fn log_key(dir: &Path) -> (String, String) {
    let (key, verifier) = generate_note_key(LOG_ORIGIN);
    let file = dir.join("log.key");
    std::fs::write(&file, key).unwrap();
    (file.display().to_string(), verifier)
}

/// The node's `/log/checkpoint`.
async fn checkpoint(server: &TestServer) -> String {
    let answer = server
        .node_get(Some(&server.pki.node), "/log/checkpoint", &[])
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    String::from_utf8(answer.body).unwrap()
}

/// The witnesses whose signature lines the checkpoint carries.
fn cosigners(checkpoint: &str) -> Vec<String> {
    let (_, signatures) = checkpoint.split_once("\n\n").unwrap();
    let mut names: Vec<String> = signatures
        .lines()
        .filter_map(|line| line.strip_prefix("— ")?.split(' ').next())
        .filter(|name| *name != LOG_ORIGIN)
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Waits until the checkpoint served is cosigned by exactly `names` (after a publication the
/// node asks the witnesses on a task of its own; the refresh loop asks a failed one again).
async fn until_cosigned_by(server: &TestServer, names: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let served = checkpoint(server).await;
        if cosigners(&served) == names {
            return served;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cosigned by {:?}, not {names:?}",
            cosigners(&served)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each witness signature line verifies over the checkpoint text with the witness's key,
/// checked with aws-lc-rs Ed25519 (siglog signs the text as a plain note signature).
fn assert_cosignatures_verify(checkpoint: &str, witnesses: &[&SiglogWitness]) {
    use base64::Engine;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let (text, signatures) = checkpoint.split_once("\n\n").unwrap();
    let text = format!("{text}\n");
    for witness in witnesses {
        let mut fields = witness.verifier_key.splitn(3, '+');
        let (name, _, key) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let key = b64.decode(key).unwrap();
        let line = signatures
            .lines()
            .find_map(|l| l.strip_prefix(&format!("— {name} ")))
            .expect("a cosignature line");
        let signed = b64.decode(line).unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &key[1..])
            .verify(text.as_bytes(), &signed[4..])
            .expect("the cosignature verifies");
    }
}

fn witness_args(keys: &[&str], required: Option<usize>) -> Vec<String> {
    let mut args = Vec::new();
    for key in keys {
        args.extend(["--witness-key".to_owned(), (*key).to_owned()]);
    }
    if let Some(k) = required {
        args.extend(["--witnesses-required".to_owned(), k.to_string()]);
    }
    args
}

async fn witnesses_cosign_each_new_checkpoint_and_consumers_require_k_of_n(db: TestDatabase) {
    let keys = tempfile::tempdir().unwrap();
    let (log_key_file, verifier) = log_key(keys.path());
    let a = SiglogWitness::start(keys.path(), "witness-a.example", LOG_ORIGIN, &verifier).await;
    let mut b = SiglogWitness::start(keys.path(), "witness-b.example", LOG_ORIGIN, &verifier).await;
    let witnesses = vec![a.config(), b.config()];
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, _, _| {
        config.transparency.key_file = log_key_file.clone();
        config.transparency.witnesses = witnesses.clone();
    })
    .await;
    // Versions valid from the past, so that the consumer (at the real time) accepts each.
    server
        .clock
        .set(chrono::Utc::now() - chrono::Duration::minutes(30));
    server.publish_all().await;
    let both = ["witness-a.example", "witness-b.example"];
    let cosigned = until_cosigned_by(&server, &both).await;
    assert_cosignatures_verify(&cosigned, &[&a, &b]);

    // A consumer that requires both, or one of the two, accepts the list; one that requires
    // a witness this log does not use is refused with exit 9.
    let consumer = tempfile::tempdir().unwrap();
    let dir = consumer.path();
    std::fs::write(dir.join("ca.pem"), server.pki.ca.certificate_pem()).unwrap();
    let (_, stranger) = generate_note_key("witness-c.example");
    let out = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    for (keys, required, exit) in [
        (
            vec![a.verifier_key.as_str(), b.verifier_key.as_str()],
            None,
            0,
        ),
        (
            vec![
                a.verifier_key.as_str(),
                b.verifier_key.as_str(),
                stranger.as_str(),
            ],
            Some(2),
            0,
        ),
        (vec![stranger.as_str()], None, 9),
    ] {
        let run = fetch_and_verify(
            &server,
            ListKind::Zal,
            dir,
            &verifier,
            &witness_args(&keys, required),
        )
        .await;
        assert_eq!(run.status.code(), Some(exit), "{}", out(&run));
    }

    // The next checkpoint: sent with the consistency proof from the size each witness
    // cosigned, cosigned again.
    server.clock.advance(chrono::Duration::minutes(5));
    server.publish(ListKind::Zal).await;
    let grown = until_cosigned_by(&server, &both).await;
    assert_ne!(grown, cosigned);
    assert_cosignatures_verify(&grown, &[&a, &b]);

    // A restarted node does not know what the witnesses cosigned: their 409 tells it.
    let server = server.restart().await;
    server.publish(ListKind::Gnl).await;
    until_cosigned_by(&server, &both).await;

    // A witness down: the node serves what the other cosigned, shows the one failing, and a
    // consumer requiring both is refused until it is back — then the refresh loop gets it.
    b.kill();
    server.clock.advance(chrono::Duration::minutes(5));
    server.publish(ListKind::Ocl).await;
    until_cosigned_by(&server, &["witness-a.example"]).await;
    let metrics = server.metrics().await;
    assert!(
        metrics
            .contains(r#"stelselnode_transparency_witness_failing{witness="witness-b.example"} 1"#),
        "{metrics}"
    );
    let both_keys = [a.verifier_key.as_str(), b.verifier_key.as_str()];
    let refused = fetch_and_verify(
        &server,
        ListKind::Ocl,
        dir,
        &verifier,
        &witness_args(&both_keys, None),
    )
    .await;
    assert_eq!(refused.status.code(), Some(9), "{}", out(&refused));
    assert!(out(&refused).contains("cosigned by 1 of the witnesses given, 2 are required"));
    let one = fetch_and_verify(
        &server,
        ListKind::Ocl,
        dir,
        &verifier,
        &witness_args(&both_keys, Some(1)),
    )
    .await;
    assert_eq!(one.status.code(), Some(0), "{}", out(&one));
    b.restart().await;
    until_cosigned_by(&server, &both).await;
    let size = server.app.state().services.transparency.size();
    let metrics = server.metrics().await;
    for witness in both {
        for metric in [
            format!(r#"stelselnode_transparency_witness_failing{{witness="{witness}"}} 0"#),
            format!(
                r#"stelselnode_transparency_witness_cosigned_leaves{{witness="{witness}"}} {size}"#
            ),
        ] {
            assert!(metrics.contains(&metric), "{metric}\n{metrics}");
        }
    }
    server.app.stop().await;
}

/// Two nodes with the same signing and log keys and one witness: the witness cosigns the
/// first node's checkpoint and refuses the other's, whose tree is not an extension of it —
/// the split view a consumer without history could not see on its own.
async fn a_witness_refuses_the_checkpoint_of_a_second_history(db: TestDatabase) {
    let other_db = super::support::empty_like(&db).await;
    let keys = tempfile::tempdir().unwrap();
    let (log_key_file, verifier) = log_key(keys.path());
    let witness = SiglogWitness::start(keys.path(), "witness.example", LOG_ORIGIN, &verifier).await;
    let witnesses = vec![witness.config()];
    let honest = TestServer::start_with(db, NodeAccess::Whitelist, |config, _, _| {
        config.transparency.key_file = log_key_file.clone();
        config.transparency.witnesses = witnesses.clone();
    })
    .await;
    let signing = honest.dir.path().to_owned();
    let rogue = TestServer::start_with(other_db, NodeAccess::Whitelist, |config, _, _| {
        let file = |name: &str| signing.join(name).display().to_string();
        config.signing.key_file = file("signer.key");
        config.signing.certificate_chain_file = file("signer.pem");
        config.transparency.key_file = log_key_file.clone();
        config.transparency.witnesses = witnesses.clone();
    })
    .await;
    honest
        .clock
        .set(chrono::Utc::now() - chrono::Duration::minutes(10));
    honest.publish_all().await;
    until_cosigned_by(&honest, &["witness.example"]).await;
    // Other lists, and more of them: a larger tree that does not contain the honest one.
    rogue
        .clock
        .set(chrono::Utc::now() - chrono::Duration::minutes(9));
    rogue.publish_all().await;
    rogue.publish(ListKind::Zal).await;
    let started = Instant::now();
    while !rogue
        .metrics()
        .await
        .contains(r#"stelselnode_transparency_witness_failing{witness="witness.example"} 1"#)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the witness cosigned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served = checkpoint(&rogue).await;
    assert!(cosigners(&served).is_empty(), "{served}");
    // A consumer requiring the witness is refused the rogue's list, though its signature and
    // the log key's are valid.
    let consumer = tempfile::tempdir().unwrap();
    std::fs::write(
        consumer.path().join("ca.pem"),
        honest.pki.ca.certificate_pem(),
    )
    .unwrap();
    let run = fetch_and_verify(
        &rogue,
        ListKind::Zal,
        consumer.path(),
        &verifier,
        &witness_args(&[witness.verifier_key.as_str()], None),
    )
    .await;
    assert_eq!(
        run.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    honest.app.stop().await;
    rogue.app.stop().await;
}
