//! The archive on both backends with a controlled clock (issue 14): bundles exported from a
//! node's published versions verify offline — also with xmlsec1 — chain into each other, are
//! byte-identical when exported twice, and every kind of tampering is reported with its own
//! message and exit status.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use stelselnode::archive::{
    BundleState, BundleTrust, ExportRequest, MANIFEST, MANIFEST_SIGNATURE, Problem, Severity,
    bundles, verify_bundle,
};
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::ListKind;
use stelselnode::signing::sign_detached;

use super::support::TestDatabase;
use super::support::node::{Node, node};
use super::support::signer::signer;

on_both_backends!(
    an_exported_bundle_verifies_and_every_tampering_is_named,
    the_list_at_an_instant_is_the_version_served_then,
    retention_purges_what_ended_long_enough_ago_and_the_chain_still_verifies,
    nightly_bundles_chain_and_the_archive_check_finds_damage,
    the_nightly_export_signs_with_the_key_sighup_put_in_place,
);

pub(super) struct Archive {
    pub(super) node: Node,
    pub(super) dir: tempfile::TempDir,
    /// Where the first bundle ends and the second starts.
    pub(super) middle: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
}

impl Archive {
    pub(super) fn trust(&self) -> BundleTrust {
        BundleTrust::new(vec![self.node.signer.ca.certificate().clone()])
    }

    pub(super) async fn export(
        &self,
        out: &str,
        to: DateTime<Utc>,
        previous: Option<&str>,
    ) -> PathBuf {
        let request = ExportRequest {
            out: self.dir.path().join(out),
            from: None,
            to,
            previous: previous.map(|p| self.dir.path().join(p)),
        };
        self.node
            .services
            .exports
            .export(&request, &mut |_, _| {})
            .await
            .unwrap();
        request.out
    }

    fn verify(
        &self,
        dir: &Path,
        state: Option<&BundleState>,
        now: DateTime<Utc>,
    ) -> Result<BundleState, Vec<Problem>> {
        verify_bundle(dir, &self.trust(), state, now).map(|v| v.state)
    }
}

/// A node that published every list three days ago and the Whitelist again (heartbeats: the
/// same content) a day later — the first bundle — then the Whitelist three more times and
/// the GNL once — the second bundle.
pub(super) async fn archive(db: TestDatabase) -> Archive {
    let node = node(db, KeyAlgorithm::Rsa2048).await;
    let start = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::days(3);
    node.clock.set(start);
    node.publish_all().await;
    for at in [
        Duration::days(1),
        Duration::days(2),
        Duration::days(2) + Duration::minutes(20),
        Duration::days(2) + Duration::minutes(40),
    ] {
        node.clock.set(start + at);
        node.publish(ListKind::Whitelist).await;
    }
    node.clock
        .set(start + Duration::days(2) + Duration::hours(1));
    node.publish(ListKind::Gnl).await;
    Archive {
        node,
        dir: tempfile::tempdir().unwrap(),
        middle: start + Duration::days(1) + Duration::hours(12),
        end: start + Duration::days(2) + Duration::hours(2),
    }
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

pub(super) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => files.extend(walk(&path)),
            false => files.push(path),
        }
    }
    files.sort();
    files
}

fn messages(result: Result<BundleState, Vec<Problem>>) -> Vec<String> {
    result
        .expect_err("the verifier accepted a bad bundle")
        .into_iter()
        .map(|p| p.message)
        .collect()
}

fn assert_reported(found: &[String], expected: &str) {
    assert!(
        found.iter().any(|m| m.contains(expected)),
        "expected a problem containing {expected:?}, got {found:?}"
    );
}

/// Re-signs a changed MANIFEST with `key`: what an exporter with a bug, or a forger with a
/// key, would produce.
pub(super) fn resign(dir: &Path, key: &stelselnode::signing::SigningKey) {
    use sha2::Digest;
    let manifest = std::fs::read(dir.join(MANIFEST)).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&manifest).into();
    std::fs::write(
        dir.join(MANIFEST_SIGNATURE),
        sign_detached(key, MANIFEST, &digest).unwrap(),
    )
    .unwrap();
}

async fn an_exported_bundle_verifies_and_every_tampering_is_named(db: TestDatabase) {
    let a = archive(db).await;
    let now = a.end;
    let first = a.export("first", a.middle, None).await;
    let second = a.export("second", a.end, Some("first")).await;

    // Whitelist Volgnummers w+1 … w+5 (the imported example list ended at w).
    let versions = a
        .node
        .db
        .storage
        .versions(ListKind::Whitelist)
        .await
        .unwrap();
    let w = versions[0].volgnummer.get() - 1;
    let gnl = a.node.db.storage.versions(ListKind::Gnl).await.unwrap();

    // Both verify, in order, and the state carries over.
    let state = a.verify(&first, None, now).unwrap();
    assert_eq!(state.lists[&ListKind::Whitelist].0, w + 2);
    let after = a.verify(&second, Some(&state), now).unwrap();
    assert_eq!(after.lists[&ListKind::Whitelist].0, w + 5);
    assert_eq!(after.lists[&ListKind::Gnl].0, gnl[1].volgnummer.get());
    // The heartbeats share one body file with the version before them.
    let bodies = std::fs::read_dir(first.join("bodies")).unwrap().count();
    assert_eq!(bodies, 4, "five versions, four different contents");

    // The same period exported again: the same bytes, file by file (RSA signs
    // deterministically, so MANIFEST.sig too).
    let again = a.export("again", a.middle, None).await;
    let (original, repeated) = (walk(&first), walk(&again));
    assert_eq!(original.len(), repeated.len());
    for (x, y) in original.iter().zip(&repeated) {
        assert_eq!(x.strip_prefix(&first), y.strip_prefix(&again));
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{x:?}"
        );
    }

    // xmlsec1 verifies the manifest signature independently.
    std::fs::write(
        a.dir.path().join("ca.pem"),
        a.node.signer.ca.certificate_pem(),
    )
    .unwrap();
    let xmlsec = Command::new("xmlsec1")
        .current_dir(&first)
        .args(["--verify", "--trusted-pem"])
        .arg(a.dir.path().join("ca.pem"))
        .arg(MANIFEST_SIGNATURE)
        .output()
        .expect("xmlsec1 is installed (scripts/test)");
    assert!(
        xmlsec.status.success(),
        "{}",
        String::from_utf8_lossy(&xmlsec.stderr)
    );

    // Each tampering, on a fresh copy of the second bundle, with its own message.
    let tampered = |name: &str| {
        let dir = a.dir.path().join(name);
        copy_dir(&second, &dir);
        dir
    };
    let body = walk(&second.join("bodies")).remove(0);
    let body_path = body.strip_prefix(&second).unwrap().to_owned();

    let flipped = tampered("flipped");
    let mut bytes = std::fs::read(flipped.join(&body_path)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(flipped.join(&body_path), bytes).unwrap();
    let found = messages(a.verify(&flipped, Some(&state), now));
    assert_reported(
        &found,
        "does not match its SHA-256 and size in the MANIFEST",
    );

    let removed = tampered("removed");
    let signature = format!("versions/whitelist/{:010}.sig", w + 3);
    std::fs::remove_file(removed.join(&signature)).unwrap();
    let found = messages(a.verify(&removed, Some(&state), now));
    assert_reported(&found, &format!("{signature} is missing"));

    let added = tampered("added");
    std::fs::write(added.join("versions/zal-extra.xml"), b"<x/>").unwrap();
    let found = messages(a.verify(&added, Some(&state), now));
    assert_reported(&found, "versions/zal-extra.xml is not in the MANIFEST");

    // A Volgnummer left out by the exporter (manifest rewritten and signed with the right
    // key): the gap is named, inside the bundle and towards the last bundle seen.
    let leave_out = |name: &str, n: i64, range: &str| {
        let dir = tampered(name);
        let version = format!("versions/whitelist/{n:010}.");
        let manifest = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        let manifest: String = manifest
            .lines()
            .filter(|l| !l.contains(&version))
            .map(|l| match l.starts_with("volgnummers whitelist ") {
                true => format!("volgnummers whitelist {range}\n"),
                false => format!("{l}\n"),
            })
            .collect();
        for ext in ["json", "header", "sig"] {
            std::fs::remove_file(dir.join(format!("{version}{ext}"))).unwrap();
        }
        std::fs::write(dir.join(MANIFEST), manifest).unwrap();
        resign(&dir, &a.node.signer.key);
        dir
    };
    let inside = leave_out("gap-inside", w + 4, &format!("{}-{}", w + 3, w + 5));
    let found = messages(a.verify(&inside, Some(&state), now));
    assert_reported(
        &found,
        &format!("whitelist: Volgnummer {} is missing", w + 4),
    );
    let across = leave_out("gap-across", w + 3, &format!("{}-{}", w + 4, w + 5));
    let found = messages(a.verify(&across, Some(&state), now));
    assert_reported(
        &found,
        &format!(
            "whitelist: the bundle starts at Volgnummer {}, the last bundle seen ended at {}",
            w + 4,
            w + 2
        ),
    );

    let forged = tampered("forged");
    resign(&forged, &signer(KeyAlgorithm::EcdsaP256).key);
    let found = messages(a.verify(&forged, Some(&state), now));
    assert_reported(&found, "the MANIFEST signature does not verify");

    // An older bundle after a newer one: rollback.
    let rollback = a.verify(&first, Some(&after), now).unwrap_err();
    assert_eq!(rollback[0].severity, Severity::Rollback);
    assert!(
        rollback[0]
            .message
            .contains("not after the last bundle seen")
    );

    // Past its expires: freeze.
    let expired = a
        .verify(&second, Some(&state), a.end + Duration::days(3))
        .unwrap_err();
    assert_eq!(expired[0].severity, Severity::Expired);
    assert!(expired[0].message.contains("expired"));

    // The command line: exit status per kind, state written only on success.
    let run = |dir: &Path, state: &Path| {
        Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .args(["archive", "verify"])
            .arg(dir)
            .arg("--ca")
            .arg(a.dir.path().join("ca.pem"))
            .arg("--state")
            .arg(state)
            .output()
            .unwrap()
    };
    let state_file = a.dir.path().join("state.json");
    // A state file that does not exist is an error (a typo would switch rollback protection
    // off), unless the auditor says it is the first bundle.
    let missing = run(&first, &state_file);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(!state_file.exists());
    let init = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .args(["archive", "verify"])
        .arg(&first)
        .arg("--ca")
        .arg(a.dir.path().join("ca.pem"))
        .arg("--state")
        .arg(&state_file)
        .arg("--init-state")
        .output()
        .unwrap();
    assert_eq!(init.status.code(), Some(0), "{init:?}");
    // The same bundle again with the state it left: still accepted.
    assert_eq!(run(&first, &state_file).status.code(), Some(0));
    let refused = run(&flipped, &state_file);
    assert_eq!(refused.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("REFUSED"));
    assert_eq!(run(&second, &state_file).status.code(), Some(0));
    assert_eq!(run(&first, &state_file).status.code(), Some(6));
}

async fn the_list_at_an_instant_is_the_version_served_then(db: TestDatabase) {
    use super::support::server::TestServer;
    use stelselnode::tls::NodeAccess;

    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    let first = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::days(2);
    server.clock.set(first);
    server.publish_all().await;
    let before = server.current(ListKind::Whitelist).await;
    let publication = first + Duration::days(1);
    server.clock.set(publication);
    let after = server.publish(ListKind::Whitelist).await;
    server.clock.set(publication + Duration::days(1));

    let ask = |t: DateTime<Utc>| {
        let server = &server;
        async move {
            let path = format!(
                "/lists/whitelist/at?t={}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            );
            server
                .node_get(Some(&server.pki.node), &path, &[])
                .await
                .unwrap()
        }
    };
    let (n, next) = (before.volgnummer.to_string(), after.volgnummer.to_string());
    for (t, volgnummer, also) in [
        (publication - Duration::microseconds(1), &n, None),
        (publication, &next, Some(&n)),
        (publication + Duration::minutes(30), &next, Some(&n)),
        (publication + Duration::hours(2), &next, None),
    ] {
        let answer = ask(t).await;
        assert_eq!(answer.status, 200, "{t}: {}", answer.text());
        assert_eq!(
            answer.header("stelselnode-volgnummer"),
            Some(volgnummer.as_str()),
            "{t}"
        );
        assert_eq!(answer.header("stelselnode-status"), Some("current"), "{t}");
        assert_eq!(
            answer.header("stelselnode-also-honoured"),
            also.map(String::as_str),
            "{t}"
        );
        let expected = server
            .stored_bytes(
                ListKind::Whitelist,
                stelselnode::domain::Volgnummer::parse(volgnummer).unwrap(),
            )
            .await;
        assert_eq!(answer.body, expected, "{t}: the exact bytes served then");
    }
    assert_eq!(ask(first - Duration::seconds(1)).await.status, 404);
    assert_eq!(ask(Utc::now() + Duration::days(3)).await.status, 404);

    // The same from the command line, on the same database.
    let out = server.dir.path().join("then.xml");
    let cli = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .args(["archive", "at", "--list", "whitelist", "--at"])
        .arg((publication - Duration::seconds(1)).to_rfc3339())
        .arg("--out")
        .arg(&out)
        .env("STELSELNODE_DATABASE_URL", &server.db.url)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{cli:?}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        server
            .stored_bytes(ListKind::Whitelist, before.volgnummer)
            .await
    );
    assert!(String::from_utf8_lossy(&cli.stderr).contains(&format!("Volgnummer {n} was current")));
}

/// The services of a running test node, built as `serve` builds them, with
/// `archive.ca_file` naming the test CA: the CA an earlier bundle must chain to.
pub(super) struct ExportParts {
    pub(super) services: stelselnode::services::Services,
    pub(super) trust: BundleTrust,
    _ca_file: tempfile::TempDir,
}

pub(super) fn export_parts(server: &super::support::server::TestServer) -> ExportParts {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("archive-ca.pem");
    std::fs::write(&ca_file, server.pki.ca.certificate_pem()).unwrap();
    let mut config = server.config.clone();
    config.archive.ca_file = ca_file.display().to_string();
    let services = stelselnode::services::Services::build(
        &config,
        server.db.storage.clone(),
        Arc::new(server.clock.clone()),
    )
    .unwrap();
    ExportParts {
        services,
        trust: BundleTrust::new(vec![server.pki.ca.certificate().clone()]),
        _ca_file: dir,
    }
}

/// `now` minus whole months and days.
fn ago(now: DateTime<Utc>, months: u32, days: i64) -> DateTime<Utc> {
    now.checked_sub_months(chrono::Months::new(months)).unwrap() - Duration::days(days)
}

async fn retention_purges_what_ended_long_enough_ago_and_the_chain_still_verifies(
    db: TestDatabase,
) {
    use super::support::server::TestServer;
    use stelselnode::domain::{AuditOutcome, AuditRecord};
    use stelselnode::tls::NodeAccess;

    // Versions valid 90 days, so that consecutive ones overlap as heartbeats would make them.
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, _, _| {
        config.publication.max_validity_seconds = 90 * 86_400;
    })
    .await;
    let now = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    // v1: superseded (and out of grace) 13 months and a day ago; v2: superseded 11 months
    // and a day ago; v3: current. The archive retention of 12 months is raised to the log
    // retention of 13: v1's bytes go, v2's stay.
    server.clock.set(ago(now, 13, 8));
    server.publish_all().await;
    let v1 = server.current(ListKind::Whitelist).await;
    server.clock.set(ago(now, 13, 1));
    let v2 = server.publish(ListKind::Whitelist).await;
    server.clock.set(ago(now, 11, 1));
    let v3 = server.publish(ListKind::Whitelist).await;
    let audit = |at: DateTime<Utc>, action: &str| AuditRecord {
        at,
        actor_subject: "CN=beheer-1".into(),
        actor_fingerprint: None,
        role: Some("beheer".into()),
        action: action.into(),
        object: None,
        on_behalf_of: None,
        outcome: AuditOutcome::Allowed,
        reason: None,
    };
    let storage = &server.db.storage;
    storage
        .append_audit(&audit(ago(now, 16, 0), "old request"))
        .await
        .unwrap();
    storage
        .append_audit(&audit(ago(now, 11, 0), "recent request"))
        .await
        .unwrap();

    server.clock.set(now);
    // The default retention: 12 months of archive, 13 of audit log.
    let retention = &server.app.state().services.retention;
    let outcome = retention.run("test").await.unwrap();
    assert_eq!(outcome.versions, 1, "{outcome:?}");
    // The old request, and the audit records of the publications 13 months ago.
    assert!(outcome.audit_records >= 1, "{outcome:?}");

    // v1's bytes are gone, its record stays; v2 and v3 are served.
    let path = |v: &stelselnode::domain::VersionRecord| {
        format!("/lists/whitelist/versions/{}", v.volgnummer)
    };
    let node = Some(&server.pki.node);
    let gone = server.node_get(node, &path(&v1), &[]).await.unwrap();
    assert_eq!(gone.status, 410, "{}", gone.text());
    for kept in [&v2, &v3] {
        assert_eq!(
            server
                .node_get(node, &path(kept), &[])
                .await
                .unwrap()
                .status,
            200
        );
    }
    let index = server
        .node_get(node, "/lists/whitelist/versions", &[])
        .await
        .unwrap()
        .json();
    let purged: Vec<bool> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["purged_at"].is_string())
        .collect();
    assert_eq!(purged, [true, false, false]);

    // The audit log: the old record destroyed, the recent one kept, the run recorded.
    let log = server
        .admin_get(&server.pki.beheer, "/audit?limit=1000")
        .await
        .json();
    let actions: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(!actions.contains(&"old request"), "{actions:?}");
    assert!(actions.contains(&"recent request"), "{actions:?}");
    assert!(actions.contains(&"retention run"), "{actions:?}");

    // The chain still verifies across the purged version.
    let dir = tempfile::tempdir().unwrap();
    let parts = export_parts(&server);
    let request = ExportRequest {
        out: dir.path().join("all"),
        from: None,
        to: now,
        previous: None,
    };
    parts
        .services
        .exports
        .export(&request, &mut |_, _| {})
        .await
        .unwrap();
    let verified = verify_bundle(&request.out, &parts.trust, None, now).unwrap();
    assert_eq!(
        verified.state.lists[&ListKind::Whitelist].0,
        v3.volgnummer.get()
    );
    // Restored, the purged version stays purged and the versions that share its body keep
    // their bytes (the purged one's placeholder gives way to the body when it comes).
    let target = super::support::empty_like(&server.db).await;
    let restorer = stelselnode::archive::Restorer {
        storage: target.storage.clone(),
        trust: parts.trust.clone(),
    };
    let request = stelselnode::archive::RestoreRequest {
        bundles: vec![request.out.clone()],
        copies: Vec::new(),
        margin: 100,
        republish: true,
    };
    restorer
        .restore(&request, now, &mut |_, _| {})
        .await
        .unwrap();
    let restored = target.storage.versions(ListKind::Whitelist).await.unwrap();
    let purged: Vec<bool> = restored.iter().map(|v| v.purged_at.is_some()).collect();
    assert_eq!(purged, [true, false, false]);
    for kept in [&v2, &v3] {
        let bytes = |storage: Arc<dyn stelselnode::storage::Storage>| async move {
            let stored = storage.version(ListKind::Whitelist, kept.volgnummer).await;
            stelselnode::publication::assemble(&stored.unwrap().unwrap()).unwrap()
        };
        assert_eq!(
            bytes(target.storage.clone()).await,
            bytes(server.db.storage.clone()).await
        );
    }

    // A second run finds nothing more to do.
    let again = retention.run("test").await.unwrap();
    assert_eq!((again.versions, again.audit_records), (0, 0));
}

async fn nightly_bundles_chain_and_the_archive_check_finds_damage(db: TestDatabase) {
    use super::support::server::TestServer;
    use super::support::swap_stored_bodies;
    use stelselnode::tls::NodeAccess;

    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    let day = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(4);
    server.clock.set(day);
    server.publish_all().await;
    let parts = export_parts(&server);
    let (exports, trust) = (&parts.services.exports, &parts.trust);
    let dir = tempfile::tempdir().unwrap();
    let mut state = None;
    // Three nights with a publication each day; a second run in a night does nothing; only
    // the newest two bundles are kept.
    for night in 1..=3 {
        server
            .clock
            .set(day + Duration::days(night) - Duration::hours(12));
        server.publish(ListKind::Whitelist).await;
        let at = day + Duration::days(night) + Duration::hours(2);
        server.clock.set(at);
        let summary = exports.nightly(dir.path(), 2).await.unwrap();
        assert!(summary.is_some(), "night {night}");
        assert!(exports.nightly(dir.path(), 2).await.unwrap().is_none());
        let newest = bundles(dir.path()).unwrap().pop().unwrap();
        state = Some(
            verify_bundle(&newest, trust, state.as_ref(), at)
                .unwrap()
                .state,
        );
    }
    assert_eq!(bundles(dir.path()).unwrap().len(), 2);

    // The archive check: clean, then a body swapped for another behind the node's back.
    let check = &server.app.state().services.archive_check;
    let clean = check.run().await.unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    swap_stored_bodies(&server.db).await;
    let damaged = check.run().await.unwrap();
    assert!(
        damaged
            .problems
            .iter()
            .any(|p| p.contains("its bytes do not match its SHA-256")),
        "{:?}",
        damaged.problems
    );
    let scrape = server.metrics().await;
    let line = format!(
        "stelselnode_archive_check_problems {}",
        damaged.problems.len()
    );
    assert!(scrape.contains(&line), "{line} not in the scrape");
    assert!(
        server.ready().await,
        "a damaged old version is an alert, not an outage"
    );
}

/// Issue 22: the nightly export signs with the key the publisher holds — the one SIGHUP put
/// in place — not with whatever the key files hold at that moment (it used to read them
/// again every 15 minutes, so a half-renewed key could sign bundles before publications).
async fn the_nightly_export_signs_with_the_key_sighup_put_in_place(db: TestDatabase) {
    use super::support::server::TestServer;
    use stelselnode::clock::Clock;
    use stelselnode::devpki::Purpose;
    use stelselnode::tls::NodeAccess;

    // Set before a key rollover, as deploy/stelselnode.toml says: an export follows a bundle
    // signed by any signing certificate under this CA, the renewed one's predecessor too.
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, pki, dir| {
        let ca = dir.join("archive-ca.pem");
        std::fs::write(&ca, pki.ca.certificate_pem()).unwrap();
        config.archive.ca_file = ca.display().to_string();
    })
    .await;
    server.publish_all().await;
    let exports = &server.app.state().services.exports;
    let trust = BundleTrust::new(vec![server.pki.ca.certificate().clone()]);
    let dir = tempfile::tempdir().unwrap();
    let signed_by = |bundle: &Path| {
        verify_bundle(bundle, &trust, None, server.clock.now())
            .unwrap_or_else(|problems| panic!("{problems:?}"))
            .signer
            .pins()
    };
    // A renewed signing key on disk, not yet reloaded: the next bundle is still signed with
    // the key publications use.
    let renewed = server
        .pki
        .ca
        .issue(
            &Purpose::Signing {
                common_name: "stelselnode signer renewed".into(),
            },
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
    std::fs::write(server.dir.path().join("signer.key"), &renewed.key_pem).unwrap();
    std::fs::write(
        server.dir.path().join("signer.pem"),
        &renewed.certificate_pem,
    )
    .unwrap();
    server.clock.advance(Duration::days(1));
    exports.nightly(dir.path(), 5).await.unwrap().unwrap();
    let first = bundles(dir.path()).unwrap().pop().unwrap();
    assert!(
        signed_by(&first).starts_with("cn:stelselnode signer "),
        "{}",
        signed_by(&first)
    );
    assert!(!signed_by(&first).contains("renewed"));

    // SIGHUP: from now on the renewed key signs publications and bundles alike.
    server.app.reload().unwrap();
    server.publish(ListKind::Whitelist).await;
    server.clock.advance(Duration::days(1));
    exports.nightly(dir.path(), 5).await.unwrap().unwrap();
    let second = bundles(dir.path()).unwrap().pop().unwrap();
    assert_ne!(first, second);
    assert!(signed_by(&second).starts_with("cn:stelselnode signer renewed"));
}
