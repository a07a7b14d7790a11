//! Publication on both backends: numbering, integrity, signatures, validity and grace,
//! heartbeat, concurrent publishers.

use chrono::{DateTime, Duration, Utc};

use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::EntryChange;
use stelselnode::domain::{
    AnyEntry, GegevensdienstId, ListEntries, ListKind, Rule, VersionStatus, Volgnummer,
    Zorgaanbieder, ZorgaanbiederFields, Zorgaanbiedernaam,
};
use stelselnode::publication::{PublishError, PublishOptions};
use stelselnode::signing::verify_signature;
use stelselnode::storage::StorageError;
use stelselnode::xml::{parse_list, render_list};

use super::support::node::{Node, node, options, published, t0};
use super::support::signer::xmlsec1_verify;
use super::support::{TestDatabase, official_example, swap_stored_bodies, xmllint_validate};

on_both_backends!(
    publication_after_import_continues_the_volgnummer_and_verifies,
    a_publication_that_breaks_integrity_stores_nothing,
    mass_removals_need_confirmation,
    retired_gegevensdienst_ids_are_never_reused,
    statuses_and_the_honoured_query_follow_the_grace_hour,
    the_heartbeat_renews_validity_before_expiry,
    concurrent_publishers_never_share_or_skip_a_number,
    scheduled_mutations_are_published_when_they_become_effective,
    a_publication_knows_which_lists_are_unchanged_since_published,
    a_renewal_never_signs_a_damaged_stored_body,
);

/// Removes GegevensdienstId `id` from the GNL's working state.
async fn delete_from_gnl(node: &Node, id: &str) {
    let storage = &node.db.storage;
    let gnl = storage.working_state(ListKind::Gnl).await.unwrap();
    storage
        .apply_change(
            &EntryChange::delete(ListKind::Gnl, id, gnl.version_of(id)),
            t0(),
        )
        .await
        .unwrap();
}

fn refused(result: Result<stelselnode::domain::VersionRecord, PublishError>, rule: Rule) -> String {
    match result {
        Err(PublishError::Refused { violations, .. }) => {
            assert!(
                violations.as_slice().iter().any(|v| v.rule == rule),
                "{violations}"
            );
            violations.to_string()
        }
        other => panic!("expected a refusal for {rule}, got {other:?}"),
    }
}

async fn publication_after_import_continues_the_volgnummer_and_verifies(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    for list in ListKind::ALL {
        let imported = parse_list(&std::fs::read(official_example(list)).unwrap(), list).unwrap();
        let published_at = node.clock_now();
        let first = node.publish(list).await;
        assert_eq!(first.volgnummer, imported.volgnummer.next(), "{list}");
        assert_eq!(first.previous_sha256, None);
        let (bytes, signature) = published(&node, list, first.volgnummer).await;
        xmllint_validate(&bytes, list).unwrap_or_else(|e| panic!("{list}: {e}"));
        xmlsec1_verify(list, &bytes, &signature, &node.signer.ca.certificate_pem())
            .unwrap_or_else(|e| panic!("{list}: {e}"));
        let check = verify_signature(
            &signature,
            &bytes,
            &[node.signer.ca.certificate().clone()],
            node.clock_now(),
        )
        .unwrap();
        assert_eq!(check.properties.volgnummer, first.volgnummer);
        assert_eq!(check.list_sha256, first.sha256);
        let document = parse_list(&bytes, list).unwrap();
        assert_eq!(document.entries, imported.entries);
        assert_eq!(document.tijdstempel.instant(), published_at);

        node.clock.advance(Duration::minutes(5));
        let second = node.publish(list).await;
        assert_eq!(second.volgnummer, first.volgnummer.next());
        assert_eq!(
            second.previous_sha256.as_deref(),
            Some(first.sha256.as_str()),
            "hash chain"
        );
        assert!(second.heartbeat, "same entries");
        // Renewed from the stored body (issue 25): exactly the bytes a rendering of the
        // working state gives, signed as any version.
        let (renewed, signature) = published(&node, list, second.volgnummer).await;
        let rendered = render_list(&stelselnode::domain::Lijst {
            tijdstempel: second.tijdstempel,
            volgnummer: second.volgnummer,
            entries: imported.entries.clone(),
        });
        assert!(renewed == rendered, "{list}: the renewal is the rendering");
        xmlsec1_verify(
            list,
            &renewed,
            &signature,
            &node.signer.ca.certificate_pem(),
        )
        .unwrap_or_else(|e| panic!("{list}: {e}"));
        let versions = node.db.storage.versions(list).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].superseded_at, Some(second.valid_from));
        assert_eq!(
            versions[0].grace_until,
            Some(second.valid_from + Duration::hours(1))
        );
        assert_eq!(
            versions[0].body_sha256, versions[1].body_sha256,
            "the body is stored once"
        );
    }
}

impl Node {
    pub fn clock_now(&self) -> DateTime<Utc> {
        use stelselnode::clock::Clock;
        self.clock.now()
    }
}

async fn a_publication_that_breaks_integrity_stores_nothing(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::Rsa2048).await;
    let storage = node.db.storage.clone();
    // GegevensdienstId 4 leaves the GNL while the ZAL still uses it.
    delete_from_gnl(&node, "4").await;
    let message = refused(
        node.services
            .publisher
            .publish(ListKind::Zal, &options())
            .await,
        Rule::Reference,
    );
    assert!(
        message.contains("Zorgaanbieder[umcharderwijk@medmij]/Gegevensdienst[4]/GegevensdienstId"),
        "{message}"
    );
    refused(
        node.services
            .publisher
            .publish(ListKind::Gnl, &options())
            .await,
        Rule::Reference,
    );
    // A Whitelist host still used by the ZAL and the OCL.
    let whitelist = storage.working_state(ListKind::Whitelist).await.unwrap();
    for host in ["rcf-rso.nl", "medmij.deenigeechtepgo.nl"] {
        storage
            .apply_change(
                &EntryChange::delete(ListKind::Whitelist, host, whitelist.version_of(host)),
                t0(),
            )
            .await
            .unwrap();
    }
    let message = refused(
        node.services
            .publisher
            .publish(ListKind::Whitelist, &options())
            .await,
        Rule::Reference,
    );
    assert!(
        message.contains("host rcf-rso.nl is not on the Whitelist")
            && message.contains("OAuthclient[medmij.deenigeechtepgo.nl]"),
        "{message}"
    );
    // An empty Whitelist.
    let whitelist = storage.working_state(ListKind::Whitelist).await.unwrap();
    let ListEntries::Whitelist(nodes) = &whitelist.entries else {
        unreachable!()
    };
    for n in nodes.as_slice() {
        let key = n.hostname.to_string();
        storage
            .apply_change(
                &EntryChange::delete(ListKind::Whitelist, &key, whitelist.version_of(&key)),
                t0(),
            )
            .await
            .unwrap();
    }
    refused(
        node.services
            .publisher
            .publish(
                ListKind::Whitelist,
                &PublishOptions {
                    confirm_mass_change: true,
                    ..options()
                },
            )
            .await,
        Rule::NotEmpty,
    );

    for list in ListKind::ALL {
        assert!(
            storage.versions(list).await.unwrap().is_empty(),
            "{list}: nothing published"
        );
    }
    assert_eq!(
        storage
            .list_head(ListKind::Zal)
            .await
            .unwrap()
            .next_volgnummer()
            .get(),
        7
    );
    // A refusal is kept for staff, but is not a failure of the node: the current version
    // keeps being served and the node stays ready.
    let health = node.services.publisher.health(ListKind::Whitelist);
    assert!(health.last_refusal.is_some());
    assert!(health.last_failure.is_none());
}

async fn mass_removals_need_confirmation(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    node.publish(ListKind::Gnl).await;
    // 7 → 6 entries is 14 % removed: above the default 10 %.
    delete_from_gnl(&node, "7").await;
    let message = refused(
        node.services
            .publisher
            .publish(ListKind::Gnl, &options())
            .await,
        Rule::MassChange,
    );
    assert!(message.contains("removes 1 of 7 entries"), "{message}");
    let confirmed = node
        .services
        .publisher
        .publish(
            ListKind::Gnl,
            &PublishOptions {
                confirm_mass_change: true,
                ..options()
            },
        )
        .await
        .unwrap();
    assert_eq!(confirmed.volgnummer.get(), 28802);
}

async fn retired_gegevensdienst_ids_are_never_reused(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let storage = node.db.storage.clone();
    let gnl = storage.working_state(ListKind::Gnl).await.unwrap();
    let removed_at = storage
        .apply_change(
            &EntryChange::delete(ListKind::Gnl, "7", gnl.version_of("7")),
            t0(),
        )
        .await
        .unwrap();
    node.publish(ListKind::Gnl).await;
    let again = AnyEntry::GegevensdienstNaam(stelselnode::domain::GegevensdienstNaam {
        id: GegevensdienstId::parse("7").unwrap(),
        weergavenaam: stelselnode::domain::Weergavenaam::parse("Afspraken nieuw").unwrap(),
    });
    storage
        .apply_change(&EntryChange::upsert(again, removed_at), t0())
        .await
        .unwrap();
    let message = refused(
        node.services
            .publisher
            .publish(ListKind::Gnl, &options())
            .await,
        Rule::Reuse,
    );
    assert!(
        message.contains("GegevensdienstId 7 was removed"),
        "{message}"
    );
}

fn without_gegevensdienst(za: &Zorgaanbieder, id: &str) -> AnyEntry {
    AnyEntry::Zorgaanbieder(
        Zorgaanbieder::new(ZorgaanbiederFields {
            naam: za.naam().clone(),
            aanbiedertype: za.aanbiedertype(),
            gegevensdiensten: za
                .gegevensdiensten()
                .iter()
                .filter(|g| g.id().as_str() != id)
                .cloned()
                .collect(),
        })
        .unwrap(),
    )
}

async fn statuses_and_the_honoured_query_follow_the_grace_hour(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let storage = node.db.storage.clone();
    let v7 = node.publish(ListKind::Zal).await;
    // An hour later, Gegevensdienst 4 of umcharderwijk is withdrawn.
    node.clock.advance(Duration::hours(1));
    let zal = storage.working_state(ListKind::Zal).await.unwrap();
    let ListEntries::Zal(entries) = &zal.entries else {
        unreachable!()
    };
    let umc = entries.get("umcharderwijk@medmij").unwrap();
    storage
        .apply_change(
            &EntryChange::upsert(
                without_gegevensdienst(umc, "4"),
                zal.version_of("umcharderwijk@medmij"),
            ),
            t0(),
        )
        .await
        .unwrap();
    let v8 = node.publish(ListKind::Zal).await;
    let superseded = t0() + Duration::hours(1);
    assert_eq!(v8.valid_from, superseded);

    let versions = storage.versions(ListKind::Zal).await.unwrap();
    let status = |i: usize, at| versions[i].status_at(at);
    assert_eq!(
        status(0, superseded - Duration::seconds(1)),
        VersionStatus::Current
    );
    assert_eq!(status(0, superseded), VersionStatus::Grace);
    assert_eq!(
        status(0, superseded + Duration::seconds(3599)),
        VersionStatus::Grace
    );
    assert_eq!(
        status(0, superseded + Duration::seconds(3600)),
        VersionStatus::Expired
    );
    assert_eq!(
        status(1, superseded + Duration::days(3)),
        VersionStatus::Current
    );
    assert_eq!(status(1, v8.expires_at), VersionStatus::Expired);

    let umc = Zorgaanbiedernaam::parse("umcharderwijk@medmij").unwrap();
    let four = GegevensdienstId::parse("4").unwrap();
    let six = GegevensdienstId::parse("6").unwrap();
    let asked = |at| node.services.publisher.honoured(&umc, &four, at);
    let before = asked(superseded - Duration::seconds(1)).await.unwrap();
    assert_eq!(before.by, vec![(v7.volgnummer, VersionStatus::Current)]);
    let inside = asked(superseded + Duration::minutes(30)).await.unwrap();
    assert_eq!(inside.by, vec![(v7.volgnummer, VersionStatus::Grace)]);
    assert!(inside.honoured);
    assert!(
        !asked(superseded + Duration::hours(1))
            .await
            .unwrap()
            .honoured,
        "after the grace hour"
    );
    assert!(
        !asked(t0() - Duration::seconds(1)).await.unwrap().honoured,
        "before anything was published"
    );
    let six_inside = node
        .services
        .publisher
        .honoured(&umc, &six, superseded + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(
        six_inside.by,
        vec![
            (v7.volgnummer, VersionStatus::Grace),
            (v8.volgnummer, VersionStatus::Current)
        ]
    );
}

async fn the_heartbeat_renews_validity_before_expiry(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let first = node.publish(ListKind::Whitelist).await;
    let settings = node.services.publisher.settings();
    // Just before the refresh window: nothing is due.
    node.clock
        .set(first.expires_at - settings.refresh_before - Duration::seconds(1));
    assert!(
        node.services
            .publisher
            .heartbeat_due(true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        node.services
            .publisher
            .heartbeat_tick(true)
            .await
            .is_empty()
    );
    // Inside it: the Whitelist is re-published with the same content and a new window.
    node.clock.advance(Duration::seconds(2));
    let outcomes = node.services.publisher.heartbeat_tick(true).await;
    assert_eq!(outcomes.len(), 1);
    let renewed = outcomes.into_iter().next().unwrap().1.unwrap();
    assert!(renewed.heartbeat);
    assert_eq!(renewed.volgnummer, first.volgnummer.next());
    assert!(renewed.expires_at > first.expires_at);
    assert_eq!(renewed.body_sha256, first.body_sha256);
    assert!(
        node.services
            .publisher
            .heartbeat_due(true)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_publishers_never_share_or_skip_a_number(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    // A second replica: its own connection pool on the same database.
    let replica = node.replica_with_delay(0).await.publisher;
    let mut tasks = Vec::new();
    for publisher in [node.services.publisher.clone(), replica] {
        for _ in 0..4 {
            let publisher = publisher.clone();
            tasks.push(tokio::spawn(async move {
                publisher
                    .publish(
                        ListKind::Whitelist,
                        &PublishOptions {
                            confirm_mass_change: false,
                            published_by: "race".into(),
                        },
                    )
                    .await
            }));
        }
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap().unwrap().volgnummer.get());
    }
    numbers.sort();
    assert_eq!(numbers, (28655..28663).collect::<Vec<_>>());
    let stored: Vec<i64> = node
        .db
        .storage
        .versions(ListKind::Whitelist)
        .await
        .unwrap()
        .iter()
        .map(|v| v.volgnummer.get())
        .collect();
    assert_eq!(stored, numbers);
}

async fn scheduled_mutations_are_published_when_they_become_effective(db: TestDatabase) {
    use super::support::mutations::{BEHEER, LOKET, audit, decide, submission};
    use stelselnode::domain::{Decision, MutationStatus};
    use stelselnode::domain::{Hostname, MedMijNode};
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let storage = node.db.storage.clone();
    let first = node.publish(ListKind::Whitelist).await;
    let host = "nieuw.example.nl";
    let entry = AnyEntry::MedMijNode(MedMijNode {
        hostname: Hostname::parse(host).unwrap(),
    });
    let effective = t0() + Duration::hours(1);
    let mut submitted = submission(EntryChange::upsert(entry, 0), LOKET, t0());
    submitted.effective_from = Some(effective);
    let id = storage
        .submit_mutation(&submitted, &audit(LOKET, "submit", t0()))
        .await
        .unwrap()
        .id;
    let approved = decide(storage.as_ref(), id, Decision::Approve, BEHEER, t0())
        .await
        .unwrap();
    assert_eq!(
        (approved.status, approved.applied_at),
        (MutationStatus::Approved, None),
        "not before its instant"
    );
    let has_host = |n: Volgnummer| {
        let node = &node;
        async move {
            String::from_utf8(published(node, ListKind::Whitelist, n).await.0)
                .unwrap()
                .contains(host)
        }
    };
    // A publication before the instant does not contain it.
    node.clock.set(effective - Duration::minutes(30));
    let before = node.publish(ListKind::Whitelist).await;
    assert!(!has_host(before.volgnummer).await);
    assert!(node.services.workflow.publish_due().await.is_empty());
    // At the instant the node applies and publishes it itself.
    node.clock.set(effective);
    let outcomes = node.services.workflow.publish_due().await;
    assert_eq!(outcomes.len(), 1);
    let scheduled = outcomes.into_iter().next().unwrap().1.unwrap();
    assert_eq!(scheduled.volgnummer, before.volgnummer.next());
    assert!(scheduled.volgnummer > first.volgnummer);
    assert!(has_host(scheduled.volgnummer).await);
    let published_mutation = storage.mutation(id).await.unwrap().unwrap();
    assert_eq!(published_mutation.status, MutationStatus::Published);
    assert_eq!(
        published_mutation.published_volgnummer,
        Some(scheduled.volgnummer.get())
    );
    assert_eq!(published_mutation.applied_at, Some(effective));
    // Approving it again is refused.
    assert!(matches!(
        decide(storage.as_ref(), id, Decision::Approve, BEHEER, effective).await,
        Err(StorageError::Decision(
            stelselnode::domain::DecisionError::WrongState { .. }
        ))
    ));
}

/// Issue 25, item 5: the working state of a list unchanged since its current version is
/// that version's content, so a heartbeat from a fresh process (the CLI) publishes it without
/// reading the archive; a changed list is still checked against the archived version.
async fn a_publication_knows_which_lists_are_unchanged_since_published(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let storage = node.db.storage.clone();
    let unchanged = |snapshot: &stelselnode::domain::Snapshot| {
        ListKind::ALL.map(|list| snapshot.list(list).standing.unchanged_since_published())
    };
    assert_eq!(
        unchanged(&storage.snapshot().await.unwrap()),
        [false; 4],
        "nothing published"
    );
    node.publish_all().await;
    assert_eq!(unchanged(&storage.snapshot().await.unwrap()), [true; 4]);
    delete_from_gnl(&node, "7").await;
    let snapshot = storage.snapshot().await.unwrap();
    assert!(
        !snapshot
            .list(ListKind::Gnl)
            .standing
            .unchanged_since_published()
    );
    assert!(
        snapshot
            .list(ListKind::Zal)
            .standing
            .unchanged_since_published()
    );

    // A fresh publisher, with nothing parsed yet: the ZAL's heartbeat, and the GNL's mass
    // removal refused as before (its published entries come from the archive).
    let fresh = node.replica_with_delay(0).await;
    let heartbeat = fresh
        .publisher
        .publish(ListKind::Zal, &options())
        .await
        .unwrap();
    assert!(heartbeat.heartbeat);
    refused(
        fresh.publisher.publish(ListKind::Gnl, &options()).await,
        Rule::MassChange,
    );
    assert!(
        storage
            .snapshot()
            .await
            .unwrap()
            .list(ListKind::Zal)
            .standing
            .unchanged_since_published()
    );
}

/// Issue 25: a list unchanged since its current version is renewed from the stored body,
/// which is compared with its SHA-256 first: a body damaged in the database is never signed
/// again, the publication fails and stores nothing.
async fn a_renewal_never_signs_a_damaged_stored_body(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    node.publish_all().await;
    let current = node.publish(ListKind::Zal).await;
    assert!(current.heartbeat);
    swap_stored_bodies(&node.db).await;
    let fresh = node.replica_with_delay(0).await;
    for publisher in [&node.services.publisher, &fresh.publisher] {
        match publisher.publish(ListKind::Zal, &options()).await {
            Err(PublishError::Storage(StorageError::Corrupt(reason))) => {
                assert!(reason.contains("does not match its SHA-256"), "{reason}");
            }
            other => panic!("a damaged body was renewed: {other:?}"),
        }
    }
    let stored = node
        .db
        .storage
        .current_version(ListKind::Zal)
        .await
        .unwrap();
    assert_eq!(stored.map(|v| v.volgnummer), Some(current.volgnummer));
}
