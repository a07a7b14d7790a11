//! The transparency log (issue 26): every published version is a leaf, in publication order,
//! appended in the transaction that stores it and never changed; the node's Merkle tree and
//! its proofs agree with an RFC 6962 implementation the node does not use (`ct-merkle`).

use chrono::Duration;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2_011::Sha256;

use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{ListKind, LogLeaf};
use stelselnode::transparency::{MerkleTree, TransparencyLog};

use super::support::node::node;
use super::support::server::{LOG_ORIGIN, TestServer};
use super::support::{TestDatabase, empty_like, execute_sql, verify_command};

on_both_backends!(
    every_version_is_a_leaf_in_publication_order,
    the_log_catches_up_with_versions_published_before_it,
    nodes_get_a_signed_checkpoint_and_the_tiles_it_covers,
    a_split_view_is_refused_with_its_own_exit_code,
    a_node_signs_no_checkpoint_that_contradicts_an_earlier_one
);

/// Takes away the database's refusal to change or delete a leaf (an operator with its
/// own SQL, a damaged or hand-edited database).
async fn drop_leaf_guards(db: &TestDatabase) {
    let statements: &[&'static str] = match db.url.starts_with("sqlite") {
        true => &[
            "DROP TRIGGER log_leaves_never_deleted",
            "DROP TRIGGER log_leaves_never_updated",
        ],
        false => &["DROP TRIGGER log_leaves_append_only ON log_leaves"],
    };
    for sql in statements {
        execute_sql(db, sql).await.unwrap();
    }
}

/// Tree sizes where RFC 6962's recursion changes shape: every size up to 70, and each power of
/// two up to 2^14 with its neighbours, and 10 000.
fn edge_sizes() -> Vec<u64> {
    let mut sizes: Vec<u64> = (1..=70).collect();
    for k in 6..=14 {
        sizes.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
    }
    sizes.push(10_000);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn leaf(i: u64) -> Vec<u8> {
    format!("leaf {i}\n").into_bytes()
}

fn independent(root: [u8; 32], size: u64) -> RootHash<Sha256> {
    RootHash::new(root.into(), size)
}

#[test]
fn roots_and_proofs_agree_with_an_independent_implementation() {
    let sizes = edge_sizes();
    let largest = *sizes.last().unwrap();
    let mut ours = MerkleTree::default();
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut roots = Vec::new();
    for i in 0..largest {
        ours.append(&leaf(i));
        theirs.push(leaf(i));
        let size = i + 1;
        if sizes.binary_search(&size).is_ok() {
            let root = theirs.root();
            assert_eq!(
                root.as_bytes().as_slice(),
                ours.root(size).unwrap(),
                "root of {size}"
            );
            roots.push((size, root));
        }
    }
    // Inclusion: at the edges of each tree, every leaf of the small ones.
    for (size, root) in &roots {
        let size = *size;
        let mut indexes: Vec<u64> = if size <= 70 {
            (0..size).collect()
        } else {
            vec![0, 1, size / 2, size - 2, size - 1]
        };
        indexes.extend((0..14).map(|k| 1u64 << k).filter(|&i| i < size));
        for index in indexes {
            let proof = ours.inclusion_proof(index, size).unwrap();
            let proof = InclusionProof::<Sha256>::from_bytes(proof.concat());
            root.verify_inclusion(&leaf(index), index, &proof)
                .unwrap_or_else(|e| panic!("leaf {index} of {size}: {e:?}"));
            // The proof proves that leaf, nothing else.
            assert!(
                root.verify_inclusion(&leaf(index + 1), index, &proof)
                    .is_err()
            );
        }
    }
    // Consistency: every pair of small trees, and each edge size against the larger ones.
    for (i, (old, old_root)) in roots.iter().enumerate() {
        for (new, new_root) in roots.iter().skip(i) {
            if *new > 70 && *old <= 70 && *old % 7 != 1 {
                continue; // enough small-to-large pairs
            }
            let proof = ours.consistency_proof(*old, *new).unwrap();
            let proof = ConsistencyProof::<Sha256>::try_from_bytes(proof.concat()).unwrap();
            new_root
                .verify_consistency(old_root, &proof)
                .unwrap_or_else(|e| panic!("{old} → {new}: {e:?}"));
            if old != new {
                let forged = independent([7; 32], *old);
                assert!(new_root.verify_consistency(&forged, &proof).is_err());
            }
        }
    }
}

async fn every_version_is_a_leaf_in_publication_order(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    node.publish_all().await;
    node.clock.advance(Duration::minutes(5));
    node.publish(ListKind::Gnl).await; // a heartbeat is a version too
    let storage = &node.db.storage;
    let entries = storage.log_entries(0, 100).await.unwrap();
    let mut published = Vec::new();
    for list in ListKind::ALL {
        published.extend(storage.versions(list).await.unwrap());
    }
    assert_eq!(entries.len(), published.len());
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.index, i as u64);
        let record = published
            .iter()
            .find(|r| r.list == entry.list && r.volgnummer == entry.volgnummer)
            .expect("every leaf names a published version");
        assert_eq!(entry.leaf, LogLeaf::of(record), "leaf {i}");
    }
    // Publication order: the heartbeat, published last, is the last leaf.
    let last = entries.last().unwrap();
    assert_eq!(last.list, ListKind::Gnl);
    assert!(entries.windows(2).all(|pair| {
        let at = |e: &stelselnode::domain::LogEntry| {
            published
                .iter()
                .find(|r| r.list == e.list && r.volgnummer == e.volgnummer)
                .map(|r| r.tijdstempel.instant())
        };
        at(&pair[0]) <= at(&pair[1])
    }));

    // A node catches up with the leaves, and again with only the new ones; the larger tree is
    // consistent with the smaller.
    let log = TransparencyLog::default();
    assert_eq!(
        log.catch_up(storage.as_ref()).await.unwrap(),
        entries.len() as u64
    );
    let old = log.size();
    let old_root = log.root(old).unwrap();
    node.clock.advance(Duration::minutes(5));
    let renewed = node.publish(ListKind::Zal).await;
    assert_eq!(log.catch_up(storage.as_ref()).await.unwrap(), 1);
    assert_eq!(log.leaf_index(ListKind::Zal, renewed.volgnummer), Some(old));
    let proof = log.consistency_proof(old, old + 1).unwrap();
    independent(log.root(old + 1).unwrap(), old + 1)
        .verify_consistency(
            &independent(old_root, old),
            &ConsistencyProof::try_from_bytes(proof.concat()).unwrap(),
        )
        .unwrap();
    let inclusion = log.inclusion_proof(old, old + 1).unwrap();
    independent(log.root(old + 1).unwrap(), old + 1)
        .verify_inclusion(
            &LogLeaf::of(&renewed).as_bytes(),
            old,
            &InclusionProof::from_bytes(inclusion.concat()),
        )
        .unwrap();

    // The database itself refuses to change or remove a leaf.
    assert!(
        execute_sql(&node.db, "DELETE FROM log_leaves")
            .await
            .is_err()
    );
    assert!(
        execute_sql(
            &node.db,
            "UPDATE log_leaves SET leaf = leaf WHERE leaf_index = 0"
        )
        .await
        .is_err()
    );
}

/// A database from before the log: its versions become leaves when it is migrated, in the
/// order they were published, with the leaves they would have had.
async fn the_log_catches_up_with_versions_published_before_it(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    node.publish_all().await;
    node.clock.advance(Duration::minutes(5));
    node.publish(ListKind::Ocl).await;
    let storage = &node.db.storage;
    let logged = storage.log_entries(0, 100).await.unwrap();
    drop_leaf_guards(&node.db).await;
    execute_sql(&node.db, "DELETE FROM log_leaves")
        .await
        .unwrap();
    assert!(storage.log_entries(0, 100).await.unwrap().is_empty());
    storage.migrate().await.unwrap();
    assert_eq!(storage.log_entries(0, 100).await.unwrap(), logged);
    storage.migrate().await.unwrap();
    assert_eq!(storage.log_entries(0, 100).await.unwrap(), logged, "once");
}

/// A checkpoint's size and root, its signature checked with the verifier key by an Ed25519
/// implementation the node's signer does not use (aws-lc-rs; the node signs with
/// ed25519-dalek through signed_note).
pub(super) fn verified_checkpoint(note: &str, verifier: &str) -> (u64, [u8; 32]) {
    use base64::Engine;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let (text, signatures) = note.split_once("\n\n").expect("a signed note");
    let text = format!("{text}\n");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(LOG_ORIGIN));
    let size: u64 = lines.next().unwrap().parse().unwrap();
    let root: [u8; 32] = b64
        .decode(lines.next().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mut fields = verifier.trim().splitn(3, '+');
    let (name, id, key) = (
        fields.next().unwrap(),
        fields.next().unwrap(),
        fields.next().unwrap(),
    );
    let key = b64.decode(key).unwrap();
    assert_eq!(key[0], 1, "Ed25519");
    let line = signatures.lines().next().unwrap();
    let signed = line
        .strip_prefix(&format!("— {name} "))
        .expect("signed by the log's key");
    let signed = b64.decode(signed).unwrap();
    assert_eq!(hex(&signed[..4]), id, "key id");
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &key[1..])
        .verify(text.as_bytes(), &signed[4..])
        .expect("the checkpoint's signature verifies");
    (size, root)
}

/// A proof's hashes, concatenated, as the node answers `path`.
async fn proof(server: &TestServer, path: &str) -> Vec<u8> {
    use base64::Engine;
    let answer = server
        .node_get(Some(&server.pki.node), path, &[])
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{path}");
    let proof: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let hashes = proof["hashes"].as_array().unwrap().iter();
    let b64 = &base64::engine::general_purpose::STANDARD;
    hashes
        .flat_map(|h| b64.decode(h.as_str().unwrap()).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn nodes_get_a_signed_checkpoint_and_the_tiles_it_covers(db: TestDatabase) {
    let server = TestServer::start(db, stelselnode::tls::NodeAccess::Whitelist).await;
    server.publish_all().await;
    let node = Some(&server.pki.node);
    let answer = server.node_get(node, "/log/checkpoint", &[]).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let (size, root) = verified_checkpoint(&answer.text(), &server.log_verifier());
    assert_eq!(size, 4, "one leaf per published version");

    // The entries tile holds the stored leaves; an independent tree over them has the
    // checkpoint's root, and the level-0 hash tile holds their leaf hashes.
    let entries = server
        .node_get(node, "/log/tile/entries/000.p/4", &[])
        .await
        .unwrap();
    assert_eq!(entries.status, 200);
    assert_eq!(
        entries.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let mut leaves = Vec::new();
    let mut rest = entries.body.as_slice();
    while let [high, low, tail @ ..] = rest {
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        leaves.push(tail[..length].to_vec());
        rest = &tail[length..];
    }
    let stored = server.db.storage.log_entries(0, 10).await.unwrap();
    assert_eq!(
        leaves,
        stored
            .iter()
            .map(|e| e.leaf.as_bytes().to_vec())
            .collect::<Vec<_>>()
    );
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for leaf in &leaves {
        theirs.push(leaf.clone());
    }
    assert_eq!(theirs.root().as_bytes().as_slice(), root);
    let hashes = server
        .node_get(node, "/log/tile/0/000.p/4", &[])
        .await
        .unwrap();
    let expected: Vec<u8> = leaves
        .iter()
        .flat_map(|leaf| {
            use sha2_011::Digest;
            Sha256::digest([&[0u8][..], leaf].concat()).to_vec()
        })
        .collect();
    assert_eq!(hashes.body, expected);
    // Tiles the log does not hold yet, and names the spec does not give.
    for missing in [
        "/log/tile/0/000.p/5",
        "/log/tile/0/000",
        "/log/tile/1/000.p/1",
        "/log/tile/0/0",
    ] {
        let answer = server.node_get(node, missing, &[]).await.unwrap();
        assert_eq!(answer.status, 404, "{missing}");
    }

    // A new version: a new checkpoint; the old tiles keep their bytes.
    server.clock.advance(Duration::minutes(5));
    let renewed = server.publish(ListKind::Zal).await;
    let answer = server.node_get(node, "/log/checkpoint", &[]).await.unwrap();
    let (size, new_root) = verified_checkpoint(&answer.text(), &server.log_verifier());
    assert_eq!(size, 5);
    let again = server
        .node_get(node, "/log/tile/entries/000.p/4", &[])
        .await
        .unwrap();
    assert_eq!(again.body, entries.body);

    // The version index names each version's leaf; one request proves it is in the
    // checkpoint's tree, another that the new tree extends the old one.
    let index = server
        .node_get(node, "/lists/zal/versions", &[])
        .await
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index.body).unwrap();
    let newest = index.as_array().unwrap().last().unwrap();
    assert_eq!(newest["volgnummer"], renewed.volgnummer.get());
    let leaf_index = newest["log_index"].as_u64().expect("a log index");
    assert_eq!(leaf_index, 4);
    // So does each version's answer, the current one's and an archived one's; the legacy
    // URLs answer as they always did.
    for (path, expected) in [
        ("/lists/zal".to_owned(), Some("4")),
        (
            format!("/lists/zal/versions/{}", renewed.volgnummer),
            Some("4"),
        ),
        (
            format!("/{}", stelselnode::signing::list_uri(ListKind::Zal)),
            None,
        ),
    ] {
        let answer = server.node_get(node, &path, &[]).await.unwrap();
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("stelselnode-log-index"), expected, "{path}");
    }
    let first = &index.as_array().unwrap()[0];
    let answer = server
        .node_get(
            node,
            &format!("/lists/zal/versions/{}", first["volgnummer"]),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        answer.header("stelselnode-log-index"),
        Some(first["log_index"].to_string().as_str())
    );
    let inclusion = format!("/log/proof/inclusion?index={leaf_index}&tree_size=5");
    let inclusion = proof(&server, &inclusion).await;
    independent(new_root, 5)
        .verify_inclusion(
            &LogLeaf::of(&renewed).as_bytes(),
            leaf_index,
            &InclusionProof::from_bytes(inclusion),
        )
        .expect("the new version is in the checkpoint's tree");
    let consistency = proof(&server, "/log/proof/consistency?from=4&tree_size=5").await;
    independent(new_root, 5)
        .verify_consistency(
            &independent(root, 4),
            &ConsistencyProof::try_from_bytes(consistency).unwrap(),
        )
        .expect("the tree of 5 extends the tree of 4");
    for beyond in [
        "/log/proof/inclusion?index=5&tree_size=5",
        "/log/proof/inclusion?index=0&tree_size=6",
        "/log/proof/consistency?from=5&tree_size=4",
        "/log/proof/consistency?from=0&tree_size=4",
    ] {
        assert_eq!(
            server.node_get(node, beyond, &[]).await.unwrap().status,
            404,
            "{beyond}"
        );
    }

    // A new log key in the same file, and SIGHUP: checkpoints are signed with it from then on.
    let (new_key, new_verifier) = stelselnode::transparency::generate_note_key(LOG_ORIGIN);
    std::fs::write(server.dir.path().join("log.key"), new_key).unwrap();
    server.app.reload().unwrap();
    let answer = server.node_get(node, "/log/checkpoint", &[]).await.unwrap();
    let (size, rolled_root) = verified_checkpoint(&answer.text(), &new_verifier);
    assert_eq!((size, rolled_root), (5, new_root));
    let old_key =
        stelselnode::transparency::verified_checkpoint(&answer.body, &server.log_verifier());
    assert!(old_key.is_err(), "no longer signed with the old key");

    // Beheer reads the log on the admin listener; loket has no role there; a stranger none
    // on the node listener.
    assert_eq!(
        server
            .admin_get(&server.pki.beheer, "/log/checkpoint")
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .admin_get(&server.pki.loket, "/log/checkpoint")
            .await
            .status,
        403
    );
    let stranger = server
        .node_get(Some(&server.pki.stranger), "/log/checkpoint", &[])
        .await;
    assert!(stranger.is_err() || stranger.unwrap().status == 403);
    server.app.stop().await;
}

/// Writes what a consumer fetches from `server` for the current `list` into `dir` (list,
/// signature, version index, checkpoint, inclusion proof) and runs `stelselnode verify` with
/// the log's verifier key and the state file in `dir`.
/// Fetches `list`'s current version, the version index, the checkpoint and the proofs from
/// `server` into `dir` as a consumer would, and runs `stelselnode verify` on them there with
/// the log key `verifier`, the state kept in `dir` and `extra` arguments.
pub(super) async fn fetch_and_verify(
    server: &TestServer,
    list: ListKind,
    dir: &std::path::Path,
    verifier: &str,
    extra: &[String],
) -> std::process::Output {
    let node = Some(&server.pki.node);
    let get = async |path: &str| {
        let answer = server.node_get(node, path, &[]).await.unwrap();
        assert_eq!(answer.status, 200, "{path}");
        answer.body
    };
    let current = server.current(list).await;
    let n = current.volgnummer;
    let index_bytes = get(&format!("/lists/{list}/versions")).await;
    let index: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    let line = index
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["volgnummer"] == n.get())
        .unwrap();
    let leaf = line["log_index"].as_u64().unwrap();
    let checkpoint = get("/log/checkpoint").await;
    let size = String::from_utf8_lossy(&checkpoint)
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let files = [
        (
            "list.xml",
            get(&format!("/lists/{list}/versions/{n}")).await,
        ),
        (
            "list.sig.xml",
            get(&format!("/lists/{list}/versions/{n}/signature")).await,
        ),
        ("versions.json", index_bytes),
        ("checkpoint", checkpoint),
        (
            "inclusion.json",
            get(&format!(
                "/log/proof/inclusion?index={leaf}&tree_size={size}"
            ))
            .await,
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // Between the checkpoint the consumer kept and this one, when they differ in size.
    let kept = std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|state| {
            let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
            state["checkpoint"]["size"].as_u64()
        });
    let size: u64 = size.parse().unwrap();
    let mut consistency = Vec::new();
    if let Some(kept) = kept.filter(|kept| *kept != size) {
        // A node that never had the larger tree cannot prove it (404): verify without.
        let (from, to) = (kept.min(size), kept.max(size));
        let path = format!("/log/proof/consistency?from={from}&tree_size={to}");
        let proof = server.node_get(node, &path, &[]).await.unwrap();
        if proof.status == 200 {
            std::fs::write(dir.join("consistency.json"), proof.body).unwrap();
            consistency = vec!["--consistency-proof", "consistency.json"];
        }
    }
    log_verify_command(dir, verifier)
        .args(["--state", "state.json"])
        .args(consistency)
        .args(extra)
        .output()
        .unwrap()
}

/// `stelselnode verify` in `dir` with the version index, checkpoint and inclusion proof there.
fn log_verify_command(dir: &std::path::Path, verifier: &str) -> std::process::Command {
    let mut command = verify_command(dir);
    command
        .args(["--versions", "versions.json", "--log-key", verifier])
        .args([
            "--checkpoint",
            "checkpoint",
            "--inclusion-proof",
            "inclusion.json",
        ]);
    command
}

/// Two nodes with the same signing and log keys publish different lists under the same
/// Volgnummers: each alone convinces a consumer, but one that saw the honest node's checkpoint
/// is refused a list it never saw before from the other, as a split view (exit 8): the per-list
/// rollback check has nothing to compare it with, the log does.
async fn a_split_view_is_refused_with_its_own_exit_code(db: TestDatabase) {
    let other_db = empty_like(&db).await;
    let honest = TestServer::start(db, stelselnode::tls::NodeAccess::Whitelist).await;
    let keys = honest.dir.path().to_owned();
    let rogue = TestServer::start_with(
        other_db,
        stelselnode::tls::NodeAccess::Whitelist,
        |config, _, _| {
            let file = |name: &str| keys.join(name).display().to_string();
            config.signing.key_file = file("signer.key");
            config.signing.certificate_chain_file = file("signer.pem");
            config.transparency.key_file = file("log.key");
        },
    )
    .await;
    honest.clock.set(chrono::Utc::now() - Duration::minutes(10));
    honest.publish_all().await;
    // Other lists under the same Volgnummers: published a minute later.
    rogue.clock.set(chrono::Utc::now() - Duration::minutes(9));
    rogue.publish_all().await;
    assert_eq!(
        honest.current(ListKind::Zal).await.volgnummer,
        rogue.current(ListKind::Zal).await.volgnummer
    );
    assert_ne!(
        honest.current(ListKind::Ocl).await.sha256,
        rogue.current(ListKind::Ocl).await.sha256
    );
    let verifier = honest.log_verifier();
    let consumer = tempfile::tempdir().unwrap();
    let ca = honest.pki.ca.certificate_pem();
    std::fs::write(consumer.path().join("ca.pem"), &ca).unwrap();
    let seen = fetch_and_verify(&honest, ListKind::Zal, consumer.path(), &verifier, &[]).await;
    let out = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(seen.status.code(), Some(0), "{}", out(&seen));
    // The honest log grows: its next checkpoint is consistent with the one kept.
    honest.clock.advance(Duration::minutes(5));
    honest.publish(ListKind::Zal).await;
    let grown = fetch_and_verify(&honest, ListKind::Zal, consumer.path(), &verifier, &[]).await;
    assert_eq!(grown.status.code(), Some(0), "{}", out(&grown));
    let state = std::fs::read_to_string(consumer.path().join("state.json")).unwrap();
    assert!(state.contains("\"size\": 5"), "{state}");

    // The rogue node alone convinces a consumer without history …
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("ca.pem"), &ca).unwrap();
    let alone = fetch_and_verify(&rogue, ListKind::Ocl, fresh.path(), &verifier, &[]).await;
    assert_eq!(alone.status.code(), Some(0), "{}", out(&alone));
    // … not the one that kept the honest checkpoint.
    let split = fetch_and_verify(&rogue, ListKind::Ocl, consumer.path(), &verifier, &[]).await;
    assert_eq!(split.status.code(), Some(8), "{}", out(&split));
    assert!(out(&split).contains("split view"), "{}", out(&split));

    // A proof that does not prove the leaf: not in the log (exit 7).
    let proof = consumer.path().join("inclusion.json");
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    forged["hashes"][0] = serde_json::Value::String("A".repeat(43) + "=");
    std::fs::write(&proof, forged.to_string()).unwrap();
    let wrong = log_verify_command(consumer.path(), &verifier)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(7), "{}", out(&wrong));
    honest.app.stop().await;
    rogue.app.stop().await;
}

/// A leaf edited behind the node's back: after a restart its tree no longer has the root the
/// log head recorded, and it signs no checkpoint (503 naming why) rather than one that
/// contradicts those already signed.
async fn a_node_signs_no_checkpoint_that_contradicts_an_earlier_one(db: TestDatabase) {
    let server = TestServer::start(db, stelselnode::tls::NodeAccess::Whitelist).await;
    server.publish_all().await;
    let node = Some(&server.pki.node);
    let before = server.node_get(node, "/log/checkpoint", &[]).await.unwrap();
    assert_eq!(before.status, 200);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("stelselnode_transparency_log_signing_refused 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stelselnode_transparency_log_leaves 4"),
        "{metrics}"
    );
    drop_leaf_guards(&server.db).await;
    let edit = match server.db.url.starts_with("sqlite") {
        true => "UPDATE log_leaves SET leaf = CAST(leaf || leaf AS BLOB) WHERE leaf_index = 1",
        false => "UPDATE log_leaves SET leaf = leaf || leaf WHERE leaf_index = 1",
    };
    execute_sql(&server.db, edit).await.unwrap();
    let server = server.restart().await;
    let node = Some(&server.pki.node);
    let after = server.node_get(node, "/log/checkpoint", &[]).await.unwrap();
    assert_eq!(after.status, 503, "{}", after.text());
    assert!(after.text().contains("not consistent"), "{}", after.text());
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("stelselnode_transparency_log_signing_refused 1"),
        "{metrics}"
    );
    // The lists are still served: the log's trouble is not the lists'.
    let list = server.node_get(node, "/lists/zal", &[]).await.unwrap();
    assert_eq!(list.status, 200);
    server.app.stop().await;
}
