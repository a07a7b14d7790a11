//! The archive carries the transparency log (issue 26): a bundle holds the log's leaves from
//! the first to the last one published in its period and the log's checkpoint of exactly
//! those; `archive verify` checks them against the bundle's versions — so a version
//! published in the period that the bundle leaves out is named, as is a log other than the
//! last bundle's and a version committed into a period already exported.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use chrono::Duration;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use sha2_011::Sha256;

use stelselnode::archive::{BundleTrust, MANIFEST, verify_bundle};
use stelselnode::domain::ListKind;
use stelselnode::transparency::generate_note_key;

use super::archive::{archive, copy_dir, resign};
use super::support::TestDatabase;
use super::support::node::LOG_ORIGIN;
use super::transparency::verified_checkpoint;

on_both_backends!(
    a_bundle_carries_the_log_up_to_its_end_and_its_checkpoint,
    a_hidden_version_a_rewritten_log_and_a_late_version_are_named,
);

/// The leaves a bundle's log holds, in order.
fn leaves(bundle: &Path) -> Vec<String> {
    let file = std::fs::File::open(bundle.join("log-leaves.jsonl.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The bundle's checkpoint: its size and root, its signature checked with `verifier`
/// independently of the node's code (aws-lc-rs Ed25519).
fn checkpoint(bundle: &Path, verifier: &str) -> (u64, [u8; 32]) {
    let note = std::fs::read_to_string(bundle.join("log-checkpoint")).unwrap();
    verified_checkpoint(&note, verifier)
}

/// The RFC 6962 root of `leaves` by `ct-merkle`, which the node does not use.
fn independent_root(leaves: &[String]) -> [u8; 32] {
    let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for leaf in leaves {
        tree.push(leaf.as_bytes().to_vec());
    }
    tree.root().as_bytes().as_slice().try_into().unwrap()
}

fn with_log_key(trust: BundleTrust, verifier: &str) -> BundleTrust {
    BundleTrust {
        log_key: Some(verifier.to_owned()),
        ..trust
    }
}

fn messages(problems: Vec<stelselnode::archive::Problem>) -> Vec<String> {
    problems.into_iter().map(|p| p.message).collect()
}

async fn a_bundle_carries_the_log_up_to_its_end_and_its_checkpoint(db: TestDatabase) {
    let a = archive(db).await;
    let first = a.export("first", a.middle, None).await;
    let second = a.export("second", a.end, Some("first")).await;
    let storage = &a.node.db.storage;
    let log = storage.log_entries(0, 1000).await.unwrap();
    let mut before_middle = 0;
    for list in ListKind::ALL {
        let versions = storage.versions(list).await.unwrap();
        before_middle += versions
            .iter()
            .filter(|v| v.tijdstempel.instant() < a.middle)
            .count();
    }
    assert!(0 < before_middle && before_middle < log.len());

    // Each bundle: the log's leaves from the first to the end of its period, and the signed
    // checkpoint of exactly those, whose root an independent implementation computes.
    let verifier = a.node.log_verifier();
    for (bundle, size) in [(&first, before_middle), (&second, log.len())] {
        let held = leaves(bundle);
        let stored: Vec<String> = log[..size]
            .iter()
            .map(|e| String::from_utf8(e.leaf.as_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(held, stored, "{bundle:?}");
        assert_eq!(
            checkpoint(bundle, &verifier),
            (size as u64, independent_root(&held)),
            "{bundle:?}"
        );
    }

    // The verifier checks it, with the log key, and remembers how far the log reached.
    let trust = with_log_key(a.trust(), &verifier);
    let now = a.end;
    let state = verify_bundle(&first, &trust, None, now).unwrap().state;
    assert_eq!(state.log.as_ref().unwrap().size, before_middle as u64);
    let after = verify_bundle(&second, &trust, Some(&state), now)
        .unwrap()
        .state;
    assert_eq!(after.log.as_ref().unwrap().size, log.len() as u64);

    // A checkpoint not signed by the key the auditor holds is refused.
    let (_, stranger) = generate_note_key(LOG_ORIGIN);
    let found = messages(
        verify_bundle(&first, &with_log_key(a.trust(), &stranger), None, now).unwrap_err(),
    );
    assert!(
        found.iter().any(|m| m.starts_with("log-checkpoint: ")),
        "{found:?}"
    );

    // The command line takes the key (or a file holding it).
    std::fs::write(
        a.dir.path().join("ca.pem"),
        a.node.signer.ca.certificate_pem(),
    )
    .unwrap();
    std::fs::write(a.dir.path().join("log.vkey"), &verifier).unwrap();
    for key in [verifier.clone(), stranger] {
        let run = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .args(["archive", "verify"])
            .arg(&first)
            .arg("--ca")
            .arg(a.dir.path().join("ca.pem"))
            .arg("--log-key")
            .arg(match key == verifier {
                true => a.dir.path().join("log.vkey").display().to_string(),
                false => key.clone(),
            })
            .output()
            .unwrap();
        let expected = if key == verifier { 0 } else { 4 };
        assert_eq!(run.status.code(), Some(expected), "{run:?}");
    }
}

async fn a_hidden_version_a_rewritten_log_and_a_late_version_are_named(db: TestDatabase) {
    let a = archive(db).await;
    let first = a.export("first", a.middle, None).await;
    let second = a.export("second", a.end, Some("first")).await;
    let trust = with_log_key(a.trust(), &a.node.log_verifier());
    let now = a.end;
    let state = verify_bundle(&first, &trust, None, now).unwrap().state;
    let key = &a.node.signer.key;

    // The second bundle without its GNL version — records, MANIFEST and its signature made
    // consistent again, as an exporter with a bug or a forger with the signing key would:
    // every other check passes; only the log shows a version published in the period that
    // the bundle hides.
    let gnl = a.node.db.storage.versions(ListKind::Gnl).await.unwrap();
    let hidden = gnl.last().unwrap().volgnummer.get();
    let dir = a.dir.path().join("hidden");
    copy_dir(&second, &dir);
    let version = format!("versions/gnl/{hidden:010}.");
    for ext in ["json", "header", "sig"] {
        std::fs::remove_file(dir.join(format!("{version}{ext}"))).unwrap();
    }
    let manifest: String = std::fs::read_to_string(dir.join(MANIFEST))
        .unwrap()
        .lines()
        .filter(|l| !l.contains(&version))
        .map(|l| match l.starts_with("volgnummers gnl ") {
            true => "volgnummers gnl none\n".to_owned(),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(dir.join(MANIFEST), manifest).unwrap();
    resign(&dir, key);
    let found = messages(verify_bundle(&dir, &trust, Some(&state), now).unwrap_err());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(&format!(
            "gnl version {hidden} was published in the period, and the bundle hides it"
        )),
        "{found:?}"
    );

    // A log other than the one the last bundle seen carried: another history.
    let mut other = state.clone();
    other.log.as_mut().unwrap().root = "A".repeat(43) + "=";
    let found = messages(verify_bundle(&second, &trust, Some(&other), now).unwrap_err());
    assert!(
        found.iter().any(|m| m.contains("another history")),
        "{found:?}"
    );

    // A version committed after the first bundle was exported, with a Tijdstempel inside the
    // period that bundle covers (a publication that waited long for its transaction): the
    // next bundle does not hold it either, and its log shows it.
    a.node.clock.set(a.middle - Duration::minutes(1));
    let late = a.node.publish(ListKind::Whitelist).await;
    let later = a.export("later", a.end, Some("first")).await;
    let found = messages(verify_bundle(&later, &trust, Some(&state), now).unwrap_err());
    assert!(
        found.iter().any(|m| m.contains(&format!(
            "whitelist version {} was published before the period, after the last bundle \
             seen: no bundle holds it",
            late.volgnummer
        ))),
        "{found:?}"
    );
}
