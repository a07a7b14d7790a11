//! Disaster recovery on both backends (issue 23): a node's bundles and consumers' copies
//! rebuild its database — versions, mutations, audit log, working state — into an empty one;
//! nothing is written when a bundle or copy fails its check; the restored node continues
//! past every Volgnummer that may have been lost, so a consumer that holds a lost version
//! never sees a rollback, and the chain checks accept that gap and no other.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use stelselnode::archive::{
    BundleTrust, ConsumerCopy, ExportRequest, RestoreError, RestoreReport, RestoreRequest,
    Restorer, verify_bundle,
};
use stelselnode::clock::Clock;
use stelselnode::consumer::ConsumerState;
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{ListKind, MutationStatus, Role, Volgnummer};
use stelselnode::mutations::Actor;
use stelselnode::services::Services;
use stelselnode::storage::{RestoreRecord, Storage};

use super::support::mutations::{actor, parsed, whitelist_upsert};
use super::support::node::{Node, accept, consumer_copy, current_whitelist, node, published, t0};
use super::support::server::TestServer;
use super::support::{TestDatabase, empty_like, execute_sql};

on_both_backends!(
    bundles_and_a_consumer_copy_rebuild_the_node_and_no_consumer_sees_a_rollback,
    bundles_alone_rebuild_the_node,
    a_flipped_byte_or_a_copy_that_does_not_follow_writes_nothing,
    a_database_that_holds_anything_is_refused,
    the_newest_versions_recovered_are_served_as_they_were_when_the_operator_says_so,
    format_1_bundles_still_verify_and_restore_with_the_last_version_as_working_state,
    a_restored_list_is_published_before_it_is_served_and_a_half_restored_database_not_at_all,
    the_bundles_still_kept_restore_what_they_hold,
);

fn loket() -> Actor {
    actor("loket-1", &[Role::Loket])
}
fn beheer() -> Actor {
    actor("beheer-1", &[Role::Beheer])
}

/// A node with two nightly bundles, and two Whitelist versions published after the second:
/// a consumer kept a copy of the first of them and accepted the second, which no bundle holds.
struct History {
    node: Node,
    dir: tempfile::TempDir,
    bundles: Vec<PathBuf>,
    copy: ConsumerCopy,
    /// A consumer that accepted the newest (lost) Whitelist version.
    consumer: ConsumerState,
    /// The mutation still waiting for a decision when the database was lost.
    open_mutation: i64,
}

async fn history(db: TestDatabase) -> History {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let workflow = &node.services.workflow;
    let dir = tempfile::tempdir().unwrap();
    node.clock.set(t0());
    node.publish_all().await;
    let first = workflow
        .submit(&loket(), parsed(&whitelist_upsert("herstel1.medmij.nl", 0)))
        .await
        .unwrap();
    workflow.approve(&beheer(), &first).await.unwrap();
    node.publish(ListKind::Whitelist).await;

    let day = |n: i64| t0() + Duration::days(n);
    let export = |name: &str, to: DateTime<Utc>, previous: Option<PathBuf>| {
        let request = ExportRequest {
            out: dir.path().join(name),
            from: None,
            to,
            previous,
        };
        let services = &node.services;
        async move {
            services
                .exports
                .export(&request, &mut |_, _| {})
                .await
                .unwrap();
            request.out
        }
    };
    node.clock.set(day(1));
    let first_bundle = export("b1", day(1), None).await;

    node.clock.set(day(1) + Duration::hours(2));
    let second = workflow
        .submit(&loket(), parsed(&whitelist_upsert("herstel2.medmij.nl", 0)))
        .await
        .unwrap();
    workflow.withdraw(&loket(), &second).await.unwrap();
    let open = workflow
        .submit(&loket(), parsed(&whitelist_upsert("herstel3.medmij.nl", 0)))
        .await
        .unwrap();
    node.publish(ListKind::Gnl).await;
    node.clock.set(day(2));
    let second_bundle = export("b2", day(2), Some(first_bundle.clone())).await;

    // After the last bundle: a change approved and published, which a consumer copied, and
    // one more version that will be lost.
    node.clock.set(day(2) + Duration::hours(1));
    let after = workflow
        .submit(&loket(), parsed(&whitelist_upsert("herstel4.medmij.nl", 0)))
        .await
        .unwrap();
    workflow.approve(&beheer(), &after).await.unwrap();
    let (_, copy) = copy_of_current_whitelist(&node, dir.path(), "wl").await;
    node.clock.set(day(2) + Duration::hours(2));
    let lost = node.publish(ListKind::Whitelist).await;
    let mut consumer = ConsumerState::default();
    accept(&node, &mut consumer, lost.volgnummer, &node)
        .await
        .unwrap();

    History {
        bundles: vec![second_bundle, first_bundle],
        node,
        dir,
        copy,
        consumer,
        open_mutation: open.id,
    }
}

/// A consumer's copy of `node`'s current Whitelist version, in `dir` as `NAME.xml`.
async fn copy_of_current_whitelist(
    node: &Node,
    dir: &std::path::Path,
    name: &str,
) -> (stelselnode::domain::VersionRecord, ConsumerCopy) {
    let current = current_whitelist(node).await;
    let copy = consumer_copy(node, ListKind::Whitelist, current.volgnummer, dir, name).await;
    (current, copy)
}

fn restorer(node: &Node, storage: std::sync::Arc<dyn Storage>) -> Restorer {
    Restorer {
        storage,
        trust: BundleTrust::new(vec![node.signer.ca.certificate().clone()]),
    }
}

async fn restore(
    history: &History,
    target: &TestDatabase,
    copies: Vec<ConsumerCopy>,
    margin: i64,
) -> Result<RestoreReport, RestoreError> {
    let request = RestoreRequest {
        bundles: history.bundles.clone(),
        copies,
        margin,
        republish: true,
    };
    restorer(&history.node, target.storage.clone())
        .restore(&request, history.node.clock.now(), &mut |_, _| {})
        .await
}

/// The restored database on the original node's configuration and clock.
fn restored_node(history: &History, target: TestDatabase) -> Node {
    let services = Services::build(
        &history.node.config,
        target.storage.clone(),
        std::sync::Arc::new(history.node.clock.clone()),
    )
    .unwrap();
    history.node.on(services, target)
}

async fn bundles_and_a_consumer_copy_rebuild_the_node_and_no_consumer_sees_a_rollback(
    db: TestDatabase,
) {
    let mut history = history(db).await;
    let target = empty_like(&history.node.db).await;
    let original = &history.node.db.storage;
    let whitelist = original.versions(ListKind::Whitelist).await.unwrap();
    let lost = whitelist.last().unwrap().volgnummer.get();

    let report = restore(&history, &target, vec![history.copy.clone()], 50)
        .await
        .unwrap();
    assert_eq!(report.bundles, 2);
    let restored = &report.lists[&ListKind::Whitelist];
    assert_eq!(restored.last_recovered, lost - 1, "the copy was adopted");
    assert_eq!(restored.adopted, 1);
    assert_eq!(restored.next_volgnummer, lost - 1 + 50 + 1);
    assert_eq!(
        report.mutations,
        [
            (MutationStatus::Submitted, 1),
            (MutationStatus::Published, 1),
            (MutationStatus::Withdrawn, 1)
        ]
        .into()
    );

    // Every version recovered is the one published, byte for byte.
    for list in ListKind::ALL {
        let before = original.versions(list).await.unwrap();
        let after = target.storage.versions(list).await.unwrap();
        let expected: Vec<_> = before
            .iter()
            .filter(|v| v.volgnummer.get() != lost || list != ListKind::Whitelist)
            .map(|v| (v.volgnummer, v.sha256.clone()))
            .collect();
        let got: Vec<_> = after
            .iter()
            .map(|v| (v.volgnummer, v.sha256.clone()))
            .collect();
        assert_eq!(got, expected, "{list}");
        for v in &after {
            let a = original.version(list, v.volgnummer).await.unwrap().unwrap();
            let b = target
                .storage
                .version(list, v.volgnummer)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                stelselnode::publication::assemble(&a).unwrap(),
                stelselnode::publication::assemble(&b).unwrap()
            );
            assert_eq!(a.signature, b.signature);
        }
    }
    // The mutations and the audit log up to the last bundle, as they were; the change
    // approved after it is lost as a mutation, but its publication came back with the copy,
    // and with it into the working state.
    let all = stelselnode::storage::MutationQuery {
        limit: 100,
        ..Default::default()
    };
    let mut in_bundles = original.mutations(&all).await.unwrap();
    in_bundles.retain(|m| m.entry_key != "herstel4.medmij.nl");
    assert_eq!(target.storage.mutations(&all).await.unwrap(), in_bundles);
    assert!(restored.working_state_from_version);
    let covered = report.recovered_up_to;
    let audit = |storage: &std::sync::Arc<dyn Storage>| {
        let storage = storage.clone();
        async move {
            let query = stelselnode::storage::AuditQuery {
                until: Some(covered),
                limit: 1000,
                ..Default::default()
            };
            storage.audit_records(&query).await.unwrap()
        }
    };
    let audited = audit(original).await;
    assert!(audited.len() >= 4, "{audited:?}");
    assert_eq!(audit(&target.storage).await, audited);
    for list in ListKind::ALL {
        assert_eq!(
            target.storage.working_state(list).await.unwrap().entries,
            original.working_state(list).await.unwrap().entries,
            "{list}"
        );
    }

    // The transparency log is the one consumers saw, leaf for leaf, up to the newest bundle's
    // checkpoint — and the copy's leaf, the next one published, after it.
    let in_bundles = history.bundles.iter().map(|b| leaves_of(b)).max().unwrap();
    let restored_log = target.storage.log_entries(0, 1000).await.unwrap();
    let original_log = original.log_entries(0, 1000).await.unwrap();
    assert_eq!(report.log_leaves, in_bundles as u64);
    assert_eq!(restored_log.len(), in_bundles + 1);
    assert_eq!(restored_log, original_log[..in_bundles + 1]);

    // The restored node publishes every list past the margin before it serves; the consumer
    // that holds the lost version accepts the new one: no rollback, no fork.
    let node = restored_node(&history, target);
    node.clock.set(node.clock.now() + Duration::minutes(5));
    let republished = node.services.publisher.publish_restored().await.unwrap();
    assert_eq!(republished.len(), 4);
    let next = current_whitelist(&node).await;
    assert_eq!(next.volgnummer.get(), restored.next_volgnummer);
    accept(&history.node, &mut history.consumer, next.volgnummer, &node)
        .await
        .unwrap();
    assert!(
        node.services
            .publisher
            .publish_restored()
            .await
            .unwrap()
            .is_empty()
    );
    // The open mutation waits for its decision as before; the next approval publishes the
    // next Volgnummer.
    let open = node
        .services
        .workflow
        .mutation(history.open_mutation)
        .await
        .unwrap();
    assert_eq!(open.status, MutationStatus::Submitted);
    node.services
        .workflow
        .approve(&beheer(), &open)
        .await
        .unwrap();
    let after_approval = current_whitelist(&node).await;
    assert_eq!(
        after_approval.volgnummer.get(),
        restored.next_volgnummer + 1
    );
    accept(
        &history.node,
        &mut history.consumer,
        after_approval.volgnummer,
        &node,
    )
    .await
    .unwrap();

    // The archive check and the next bundle accept the restore's gap …
    let check = node.services.archive_check.run().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    let trust = BundleTrust::new(vec![history.node.signer.ca.certificate().clone()]);
    let seen = history.bundles.iter().rev().fold(None, |state, bundle| {
        Some(
            verify_bundle(bundle, &trust, state.as_ref(), history.node.clock.now())
                .unwrap()
                .state,
        )
    });
    let third = history.dir.path().join("b3");
    let day3 = t0() + Duration::days(3);
    node.clock.set(day3 + Duration::minutes(1));
    let request = ExportRequest {
        out: third.clone(),
        from: None,
        to: day3,
        previous: Some(history.bundles[0].clone()),
    };
    node.services
        .exports
        .export(&request, &mut |_, _| {})
        .await
        .unwrap();
    verify_bundle(&third, &trust, seen.as_ref(), node.clock.now()).unwrap();

    // … and no other: a node that reused the lost Volgnummer (what a restore without margin
    // would do) is refused by the consumer, the archive check and the bundle verifier.
    execute_sql(&node.db, "DELETE FROM restores").await.unwrap();
    let check = node.services.archive_check.run().await.unwrap();
    assert!(
        check.problems.iter().any(|p| p.contains("missing")),
        "{:?}",
        check.problems
    );
    let fourth = history.dir.path().join("b4");
    node.clock.set(day3 + Duration::minutes(2));
    let request = ExportRequest {
        out: fourth.clone(),
        from: None,
        to: day3 + Duration::minutes(1),
        previous: None,
    };
    node.services
        .exports
        .export(&request, &mut |_, _| {})
        .await
        .unwrap();
    let problems = verify_bundle(&fourth, &trust, None, node.clock.now()).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("whitelist: Volgnummers")),
        "{problems:?}"
    );
}

async fn bundles_alone_rebuild_the_node(db: TestDatabase) {
    let history = history(db).await;
    let target = empty_like(&history.node.db).await;
    let report = restore(&history, &target, Vec::new(), 1000).await.unwrap();
    let whitelist = &report.lists[&ListKind::Whitelist];
    assert_eq!(whitelist.adopted, 0);
    let in_bundles = target
        .storage
        .current_version(ListKind::Whitelist)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(whitelist.last_recovered, in_bundles.volgnummer.get());
    assert_eq!(
        whitelist.next_volgnummer,
        in_bundles.volgnummer.get() + 1001
    );
    let node = restored_node(&history, target);
    node.services.publisher.publish_restored().await.unwrap();
    let mut consumer = history.consumer.clone();
    let next = Volgnummer::new(whitelist.next_volgnummer).unwrap();
    accept(&history.node, &mut consumer, next, &node)
        .await
        .unwrap();
}

async fn a_flipped_byte_or_a_copy_that_does_not_follow_writes_nothing(db: TestDatabase) {
    let history = history(db).await;
    let target = empty_like(&history.node.db).await;

    // A copy of the lost version alone does not follow the last bundle's version.
    let (_, skipping) =
        copy_of_current_whitelist(&history.node, history.dir.path(), "skipping").await;
    let refused = restore(&history, &target, vec![skipping], 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, RestoreError::Refused(p) if p.iter().any(|p| p.contains("does not follow"))),
        "{refused}"
    );

    // One byte of one audit record flipped in the older bundle.
    let audit = history.bundles[1].join("audit.jsonl.gz");
    let mut bytes = std::fs::read(&audit).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&audit, &bytes).unwrap();
    let refused = restore(&history, &target, Vec::new(), 1000)
        .await
        .unwrap_err();
    let RestoreError::Refused(problems) = &refused else {
        panic!("{refused}");
    };
    assert!(
        problems
            .iter()
            .any(|p| p.contains("audit.jsonl.gz does not match its SHA-256")),
        "{problems:?}"
    );
    assert_eq!(target.storage.holds_data().await.unwrap(), None);
    assert!(!target.storage.restore_unfinished().await.unwrap());
}

async fn a_database_that_holds_anything_is_refused(db: TestDatabase) {
    let history = history(db).await;
    let refused = restore(&history, &history.node.db, Vec::new(), 1000)
        .await
        .unwrap_err();
    assert!(matches!(refused, RestoreError::NotEmpty(_)), "{refused}");
    let too_small = empty_like(&history.node.db).await;
    let refused = restore(&history, &too_small, Vec::new(), 1)
        .await
        .unwrap_err();
    assert!(matches!(refused, RestoreError::Margin), "{refused}");
    assert_eq!(too_small.storage.holds_data().await.unwrap(), None);
}

async fn a_restored_list_is_published_before_it_is_served_and_a_half_restored_database_not_at_all(
    db: TestDatabase,
) {
    let server = TestServer::start(db, stelselnode::tls::NodeAccess::Whitelist).await;
    server.publish_all().await;
    let last = server.current(ListKind::Whitelist).await;
    // What a finished restore leaves behind: a record of the gap, the numbering past it.
    let record = RestoreRecord {
        list: ListKind::Whitelist,
        at: server.clock.now(),
        after_volgnummer: last.volgnummer.get(),
        after_sha256: Some(last.sha256.clone()),
        next_volgnummer: last.volgnummer.get() + 11,
        recovered_up_to: server.clock.now(),
    };
    let server = server
        .restart_after(async |db| {
            db.storage
                .finish_restore(std::slice::from_ref(&record), true)
                .await
                .unwrap();
        })
        .await;
    let served = server.current(ListKind::Whitelist).await;
    assert_eq!(served.volgnummer.get(), record.next_volgnummer);
    assert_eq!(
        served.previous_sha256.as_deref(),
        Some(last.sha256.as_str())
    );
    assert!(server.ready().await);

    // A restore that began and did not finish: the node does not start on it.
    server.app.stop().await;
    let mut nothing = std::iter::empty();
    server.db.storage.restore_items(&mut nothing).await.unwrap();
    let services = Services::build(
        &server.config,
        server.db.storage.clone(),
        std::sync::Arc::new(server.clock.clone()),
    )
    .unwrap();
    let refused = stelselnode::server::Application::build(services)
        .await
        .err();
    assert!(
        matches!(
            refused,
            Some(stelselnode::server::StartError::UnfinishedRestore)
        ),
        "{refused:?}"
    );
}

async fn the_newest_versions_recovered_are_served_as_they_were_when_the_operator_says_so(
    db: TestDatabase,
) {
    let history = history(db).await;
    let target = empty_like(&history.node.db).await;
    // Copies of both versions published after the last bundle: the newest any consumer has.
    let (newest, copy) =
        copy_of_current_whitelist(&history.node, history.dir.path(), "newest").await;
    let (bytes, signature) = published(&history.node, ListKind::Whitelist, newest.volgnummer).await;
    let request = RestoreRequest {
        bundles: history.bundles.clone(),
        copies: vec![copy, history.copy.clone()],
        margin: 100,
        republish: false,
    };
    let report = restorer(&history.node, target.storage.clone())
        .restore(&request, history.node.clock.now(), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.lists[&ListKind::Whitelist].adopted, 2);
    let node = restored_node(&history, target);
    assert!(
        node.services
            .publisher
            .publish_restored()
            .await
            .unwrap()
            .is_empty()
    );
    let served = current_whitelist(&node).await;
    assert_eq!(
        (served.volgnummer, &served.sha256),
        (newest.volgnummer, &newest.sha256)
    );
    assert_eq!(
        published(&node, ListKind::Whitelist, served.volgnummer).await,
        (bytes, signature)
    );
    let next = node.publish(ListKind::Whitelist).await;
    assert_eq!(next.volgnummer.get(), newest.volgnummer.get() + 101);
    let mut consumer = history.consumer.clone();
    accept(&history.node, &mut consumer, next.volgnummer, &node)
        .await
        .unwrap();
}

/// How many leaves of the transparency log `bundle` carries.
fn leaves_of(bundle: &std::path::Path) -> usize {
    use std::io::Read;
    let file = std::fs::File::open(bundle.join("log-leaves.jsonl.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text.lines().count()
}

/// `bundle` rewritten as format 1 wrote it — versions and the SLA report, records without
/// `body_sha256` — following the MANIFEST whose SHA-256 is `previous`, signed with `key`.
/// Returns the SHA-256 of its new MANIFEST.
fn as_format_1(
    bundle: &std::path::Path,
    previous: Option<&str>,
    key: &stelselnode::signing::SigningKey,
) -> String {
    use stelselnode::archive::{MANIFEST, MANIFEST_SIGNATURE};
    for added in [
        "mutations.jsonl.gz",
        "audit.jsonl.gz",
        "state.jsonl.gz",
        "log-leaves.jsonl.gz",
        "log-checkpoint",
    ] {
        std::fs::remove_file(bundle.join(added)).unwrap();
    }
    let files = super::archive::walk(bundle);
    for record in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        if let Some(fields) = json.as_object_mut() {
            fields.remove("body_sha256");
        }
        std::fs::write(record, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
    let text = std::fs::read_to_string(bundle.join(MANIFEST)).unwrap();
    let mut manifest: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("file "))
        .map(|line| match line {
            "stelselnode-archive-bundle 3" => "stelselnode-archive-bundle 1".to_owned(),
            line if line.starts_with("previous-manifest-sha256 ") => {
                format!("previous-manifest-sha256 {}", previous.unwrap_or("none"))
            }
            line => line.to_owned(),
        })
        .collect();
    for file in &files {
        let path = file.strip_prefix(bundle).unwrap().display().to_string();
        if path == MANIFEST || path == MANIFEST_SIGNATURE {
            continue;
        }
        let bytes = std::fs::read(file).unwrap();
        let sha = stelselnode::signing::sha256_hex(&bytes);
        manifest.push(format!("file {sha} {} {path}", bytes.len()));
    }
    let text = manifest.join("\n") + "\n";
    std::fs::write(bundle.join(MANIFEST), &text).unwrap();
    super::archive::resign(bundle, key);
    stelselnode::signing::sha256_hex(text.as_bytes())
}

async fn format_1_bundles_still_verify_and_restore_with_the_last_version_as_working_state(
    db: TestDatabase,
) {
    let history = history(db).await;
    let (second, first) = (&history.bundles[0], &history.bundles[1]);
    let key = &history.node.signer.key;
    let first_sha = as_format_1(first, None, key);
    as_format_1(second, Some(&first_sha), key);
    let trust = BundleTrust::new(vec![history.node.signer.ca.certificate().clone()]);
    let now = history.node.clock.now();
    let verified = verify_bundle(first, &trust, None, now).unwrap();
    assert_eq!(verified.manifest.format, 1);
    verify_bundle(second, &trust, Some(&verified.state), now).unwrap();

    let target = empty_like(&history.node.db).await;
    let report = restore(&history, &target, vec![history.copy.clone()], 100)
        .await
        .unwrap();
    assert!(report.mutations.is_empty());
    assert_eq!(report.audit_records, 0);
    for (list, restored) in &report.lists {
        assert!(restored.working_state_from_version, "{list}");
        assert_eq!(
            target.storage.working_state(*list).await.unwrap().entries,
            history
                .node
                .db
                .storage
                .working_state(*list)
                .await
                .unwrap()
                .entries,
            "{list}: the content of the last version recovered"
        );
    }
}

async fn the_bundles_still_kept_restore_what_they_hold(db: TestDatabase) {
    let mut history = history(db).await;
    // `archive nightly --keep` removed the older bundle. (The consumer's copy cannot be
    // adopted now: the Whitelist version it follows was in that bundle.)
    let oldest_kept = history.bundles.remove(0);
    history.bundles = vec![oldest_kept];
    let target = empty_like(&history.node.db).await;
    let report = restore(&history, &target, Vec::new(), 100).await.unwrap();
    assert_eq!(report.bundles, 1);
    let day1 = t0() + Duration::days(1);
    assert_eq!(report.recovered_from, Some(day1));
    let original = &history.node.db.storage;
    for list in ListKind::ALL {
        let kept: Vec<_> = original
            .versions(list)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.tijdstempel.instant() >= day1)
            .map(|v| v.sha256)
            .collect();
        let restored: Vec<_> = target
            .storage
            .versions(list)
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.sha256)
            .collect();
        assert!(kept.starts_with(&restored), "{list}");
    }
    // The whole log, from its first leaf: also the leaves of versions only the bundles no
    // longer kept held.
    let in_bundle = leaves_of(&history.bundles[0]);
    let restored_log = target.storage.log_entries(0, 1000).await.unwrap();
    assert_eq!(
        restored_log,
        original.log_entries(0, 1000).await.unwrap()[..in_bundle]
    );
    let mut versions_restored = 0;
    for list in ListKind::ALL {
        versions_restored += target.storage.versions(list).await.unwrap().len();
    }
    assert!(versions_restored < in_bundle);
    let node = restored_node(&history, target);
    node.services.publisher.publish_restored().await.unwrap();
    let check = node.services.archive_check.run().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}
