//! The mutation workflow's rules in-process, against `MutationWorkflow` on both backends:
//! publication right after approval, four eyes, the re-check at approval, stale bases,
//! delayed publication, the release clean-up and concurrent approvals. Routing, roles, audit
//! and TLS are tested over HTTP in `mutation_workflow.rs`.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use stelselnode::clock::Clock;
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{
    DecisionError, Deelnemer, EntryChange, Interfaceversie, ListKind, MutationStatus, Reden, Role,
    Rule, Ticketreferentie, Volgnummer,
};
use stelselnode::mutations::{Actor, CheckError, RetireOutcome, RetireRequest, WorkflowError};

use super::support::mutations::{
    NEW_HOST, actor, delete, gegevensdienst, gnl_upsert, parsed, whitelist_upsert, zorgaanbieder,
};
use super::support::node::{
    Node, assert_published_lists_consistent, node, published, published_entries,
};
use super::support::signer::xmlsec1_verify;
use super::support::{TestDatabase, xmllint_validate};

on_both_backends!(
    an_approved_change_is_published_at_once_and_verifies,
    nobody_decides_on_their_own_mutation_and_only_the_submitter_withdraws,
    an_approval_checks_the_change_again_against_the_state_then,
    a_stale_base_version_is_a_conflict_at_submission_and_at_approval,
    a_publication_delay_leaves_the_change_to_the_schedule,
    the_release_clean_up_submits_reviewed_mutations,
    of_two_concurrent_approvals_of_one_mutation_one_wins,
    a_list_is_never_published_referring_to_an_unpublished_gegevensdienst,
    a_removal_publishes_the_referring_list_with_the_referred_one,
    of_two_conflicting_approvals_on_two_nodes_one_succeeds,
);

fn loket() -> Actor {
    actor("loket-1", &[Role::Loket])
}
fn beheer() -> Actor {
    actor("beheer-1", &[Role::Beheer])
}
fn beheer2() -> Actor {
    actor("beheer-2", &[Role::Beheer])
}

/// A node whose four lists are published.
async fn published_node(db: TestDatabase) -> Node {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    node.publish_all().await;
    node
}

async fn current(node: &Node, list: ListKind) -> Volgnummer {
    let version = node.db.storage.current_version(list).await.unwrap();
    version.unwrap().volgnummer
}

fn invalid(result: Result<impl std::fmt::Debug, WorkflowError>) -> Vec<(String, Rule)> {
    match result {
        Err(WorkflowError::Check(CheckError::Invalid(v))) => v
            .as_slice()
            .iter()
            .map(|v| (v.path.clone(), v.rule))
            .collect(),
        other => panic!("expected an integrity refusal, got {other:?}"),
    }
}

async fn an_approved_change_is_published_at_once_and_verifies(db: TestDatabase) {
    let node = published_node(db).await;
    let before = current(&node, ListKind::Whitelist).await;
    let submitted = node
        .services
        .workflow
        .submit(&loket(), parsed(&whitelist_upsert(NEW_HOST, 0)))
        .await
        .unwrap();
    assert_eq!(submitted.status, MutationStatus::Submitted);
    let approval = node
        .services
        .workflow
        .approve(&beheer(), &submitted)
        .await
        .unwrap();
    let publication = approval
        .publication
        .expect("published right after approval");
    assert!(publication.published, "{publication:?}");
    assert_eq!(publication.volgnummer, Some(before.next().get()));
    assert_eq!(approval.mutation.status, MutationStatus::Published);
    assert_eq!(
        approval.mutation.published_volgnummer,
        Some(before.next().get())
    );
    let (bytes, signature) = published(&node, ListKind::Whitelist, before.next()).await;
    assert!(String::from_utf8_lossy(&bytes).contains(NEW_HOST));
    xmllint_validate(&bytes, ListKind::Whitelist).unwrap();
    xmlsec1_verify(
        ListKind::Whitelist,
        &bytes,
        &signature,
        &node.signer.ca.certificate_pem(),
    )
    .unwrap();
}

async fn nobody_decides_on_their_own_mutation_and_only_the_submitter_withdraws(db: TestDatabase) {
    let node = published_node(db).await;
    let workflow = &node.services.workflow;
    let own = workflow
        .submit(&beheer(), parsed(&whitelist_upsert(NEW_HOST, 0)))
        .await
        .unwrap();
    assert!(matches!(
        workflow.approve(&beheer(), &own).await,
        Err(WorkflowError::Decision(DecisionError::FourEyes { .. }))
    ));
    assert!(matches!(
        workflow
            .reject(&beheer(), &own, Reden::parse("eigen").unwrap())
            .await,
        Err(WorkflowError::Decision(DecisionError::FourEyes { .. }))
    ));
    assert!(matches!(
        workflow.withdraw(&loket(), &own).await,
        Err(WorkflowError::Decision(DecisionError::NotSubmitter { .. }))
    ));
    assert_eq!(
        workflow.mutation(own.id).await.unwrap().status,
        MutationStatus::Submitted
    );
    let withdrawn = workflow.withdraw(&beheer(), &own).await.unwrap();
    assert_eq!(withdrawn.status, MutationStatus::Withdrawn);
    assert!(matches!(
        workflow.approve(&beheer2(), &withdrawn).await,
        Err(WorkflowError::Decision(DecisionError::WrongState { .. }))
    ));
}

async fn an_approval_checks_the_change_again_against_the_state_then(db: TestDatabase) {
    let node = published_node(db).await;
    let workflow = &node.services.workflow;
    let host = workflow
        .submit(&loket(), parsed(&whitelist_upsert(NEW_HOST, 0)))
        .await
        .unwrap();
    workflow.approve(&beheer(), &host).await.unwrap();
    // A Zorgaanbieder on the new host waits for review while the host is removed again.
    let zorgaanbieder = workflow
        .submit(
            &loket(),
            parsed(&zorgaanbieder(
                "nieuwziekenhuis@medmij",
                json!([gegevensdienst("4", NEW_HOST)]),
            )),
        )
        .await
        .unwrap();
    let removal = workflow
        .submit(&loket(), parsed(&delete("whitelist", NEW_HOST, 1)))
        .await
        .unwrap();
    workflow.approve(&beheer(), &removal).await.unwrap();
    let refused = invalid(workflow.approve(&beheer(), &zorgaanbieder).await);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|(_, rule)| *rule == Rule::Reference));
    assert_eq!(
        workflow.mutation(zorgaanbieder.id).await.unwrap().status,
        MutationStatus::Submitted,
        "a refused approval decides nothing"
    );
}

async fn a_stale_base_version_is_a_conflict_at_submission_and_at_approval(db: TestDatabase) {
    let node = published_node(db).await;
    let workflow = &node.services.workflow;
    // The example Whitelist holds the host at version 1.
    let host = "medmij.xisbridge.net";
    assert_eq!(
        invalid(
            workflow
                .submit(&loket(), parsed(&whitelist_upsert(host, 0)))
                .await
        ),
        [("$.entry".to_owned(), Rule::Unique)]
    );
    assert!(matches!(
        workflow
            .submit(&loket(), parsed(&whitelist_upsert(host, 5)))
            .await,
        Err(WorkflowError::Check(CheckError::Stale {
            expected: 5,
            current: 1,
            ..
        }))
    ));
    let change = workflow
        .submit(&loket(), parsed(&whitelist_upsert(host, 1)))
        .await
        .unwrap();
    // The entry moves on by another way (an import, another replica) before the approval.
    let entry = workflow.entry(ListKind::Whitelist, host).await.unwrap();
    node.db
        .storage
        .apply_change(
            &EntryChange::upsert(
                parsed(&whitelist_upsert(host, entry.version))
                    .change
                    .entry()
                    .unwrap()
                    .clone(),
                entry.version,
            ),
            node.clock.now(),
        )
        .await
        .unwrap();
    assert!(matches!(
        workflow.approve(&beheer(), &change).await,
        Err(WorkflowError::Check(CheckError::Stale { .. }))
    ));
}

async fn a_publication_delay_leaves_the_change_to_the_schedule(db: TestDatabase) {
    let node = published_node(db).await;
    let delayed = node.workflow_with_delay(600);
    let before = current(&node, ListKind::Whitelist).await;
    let submitted = delayed
        .submit(&loket(), parsed(&whitelist_upsert(NEW_HOST, 0)))
        .await
        .unwrap();
    let approval = delayed.approve(&beheer(), &submitted).await.unwrap();
    assert!(approval.publication.is_none());
    assert_eq!(approval.mutation.status, MutationStatus::Approved);
    assert!(approval.mutation.applied_at.is_some());
    node.clock.advance(Duration::seconds(599));
    assert!(delayed.publish_due().await.is_empty());
    node.clock.advance(Duration::seconds(1));
    let outcomes = delayed.publish_due().await;
    assert_eq!(outcomes.len(), 1);
    let (list, version) = &outcomes[0];
    assert_eq!(*list, ListKind::Whitelist);
    assert_eq!(version.as_ref().unwrap().volgnummer, before.next());
    assert_eq!(
        delayed.mutation(submitted.id).await.unwrap().status,
        MutationStatus::Published
    );
}

async fn the_release_clean_up_submits_reviewed_mutations(db: TestDatabase) {
    let node = published_node(db).await;
    let workflow = &node.services.workflow;
    let mut old = gegevensdienst("4", "medmij.xisbridge.net");
    old["interfaceversie"] = json!("release1");
    let za = workflow
        .submit(
            &loket(),
            parsed(&zorgaanbieder(
                "nieuwziekenhuis@medmij",
                json!([old, gegevensdienst("6", "medmij.xisbridge.net")]),
            )),
        )
        .await
        .unwrap();
    workflow.approve(&beheer(), &za).await.unwrap();
    let request = |dry_run| RetireRequest {
        interfaceversie: Interfaceversie::parse("release1").unwrap(),
        reference: Ticketreferentie::parse("RELEASE-2").unwrap(),
        on_behalf_of: Deelnemer::parse("Stichting MedMij").unwrap(),
        dry_run,
    };
    let RetireOutcome::Planned(planned) = workflow
        .retire_interface_version(&beheer(), request(true))
        .await
        .unwrap()
    else {
        panic!("a dry run plans")
    };
    assert_eq!(
        planned.iter().map(|c| c.key()).collect::<Vec<_>>(),
        ["nieuwziekenhuis@medmij"]
    );
    let RetireOutcome::Submitted(submitted) = workflow
        .retire_interface_version(&beheer(), request(false))
        .await
        .unwrap()
    else {
        panic!("a real run submits")
    };
    assert_eq!(submitted.len(), 1);
    assert!(matches!(
        workflow.approve(&beheer(), &submitted[0]).await,
        Err(WorkflowError::Decision(DecisionError::FourEyes { .. }))
    ));
    workflow.approve(&beheer2(), &submitted[0]).await.unwrap();
    let entry = workflow
        .entry(ListKind::Zal, "nieuwziekenhuis@medmij")
        .await
        .unwrap()
        .entry
        .unwrap();
    assert_eq!(entry["gegevensdiensten"].as_array().unwrap().len(), 1);
    assert_eq!(entry["gegevensdiensten"][0]["id"], "6");
}

async fn of_two_concurrent_approvals_of_one_mutation_one_wins(db: TestDatabase) {
    let node = published_node(db).await;
    let before = current(&node, ListKind::Whitelist).await;
    let workflow = node.services.workflow.clone();
    let submitted = workflow
        .submit(&loket(), parsed(&whitelist_upsert(NEW_HOST, 0)))
        .await
        .unwrap();
    let approvals = [beheer(), beheer2()].map(|who| {
        let (workflow, submitted) = (workflow.clone(), submitted.clone());
        tokio::spawn(async move { workflow.approve(&who, &submitted).await })
    });
    let mut outcomes = Vec::new();
    for approval in approvals {
        outcomes.push(approval.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes.iter().any(|o| matches!(
        o,
        Err(WorkflowError::Decision(DecisionError::WrongState { .. }))
    )));
    // The winner's publication, and no other.
    assert_eq!(current(&node, ListKind::Whitelist).await, before.next());
}

/// Finding 1 of issue 11: the GNL is ahead of its published version (its publication waits for
/// a mass-change confirmation) when a ZAL change uses a new GegevensdienstId.
async fn a_list_is_never_published_referring_to_an_unpublished_gegevensdienst(db: TestDatabase) {
    let node = published_node(db).await;
    let workflow = &node.services.workflow;
    let gnl_before = current(&node, ListKind::Gnl).await;
    let approve = |body: serde_json::Value| async move {
        let submitted = workflow.submit(&loket(), parsed(&body)).await.unwrap();
        let approval = workflow.approve(&beheer(), &submitted).await.unwrap();
        approval.publication.expect("publication is tried at once")
    };
    // 1 of 7 GNL entries goes: more than 10 %, so the GNL is not published without staff.
    let removal = approve(delete("gnl", "7", 1)).await;
    assert!(!removal.published);
    assert!(
        !approve(gnl_upsert("99", "Nieuwe gegevensdienst", 0))
            .await
            .published
    );
    // The ZAL change needs GegevensdienstId 99, which only the unpublished GNL has: the ZAL
    // goes only with the GNL, and that still waits for the confirmation.
    let zal_before = current(&node, ListKind::Zal).await;
    let za = approve(zorgaanbieder(
        "nieuwziekenhuis@medmij",
        json!([gegevensdienst("99", "medmij.xisbridge.net")]),
    ))
    .await;
    assert!(!za.published, "{za:?}");
    assert!(
        za.violations.iter().any(|v| v.rule == Rule::MassChange),
        "{za:?}"
    );
    assert_eq!(current(&node, ListKind::Zal).await, zal_before);
    assert_eq!(current(&node, ListKind::Gnl).await, gnl_before);
    assert_published_lists_consistent(&node).await;
    // Confirmed, the ZAL is published together with the GNL it needs, in one step.
    let published = workflow
        .publish(&beheer(), &[ListKind::Zal], true)
        .await
        .unwrap();
    assert_eq!(published, [(ListKind::Zal, zal_before.next().get())]);
    assert_eq!(current(&node, ListKind::Gnl).await, gnl_before.next());
    let lists = published_entries(&node).await;
    assert!(lists[&ListKind::Gnl].keys().contains(&"99"));
    assert!(!lists[&ListKind::Gnl].keys().contains(&"7"));
    assert_published_lists_consistent(&node).await;
}

/// The other direction: a Whitelist host leaves while the published OCL still names it.
async fn a_removal_publishes_the_referring_list_with_the_referred_one(db: TestDatabase) {
    let node = published_node(db).await;
    let delayed = node.workflow_with_delay(3600);
    let host = "pgocluster68.personalhealthprovider.net";
    for body in [delete("ocl", host, 1), delete("whitelist", host, 1)] {
        let submitted = delayed.submit(&loket(), parsed(&body)).await.unwrap();
        let approval = delayed.approve(&beheer(), &submitted).await.unwrap();
        assert!(approval.publication.is_none(), "delayed");
    }
    let ocl_before = current(&node, ListKind::Ocl).await;
    let whitelist_before = current(&node, ListKind::Whitelist).await;
    // Publishing the Whitelist alone would leave the published OCL naming a host nodes no
    // longer allow: the OCL goes with it.
    let published = delayed
        .publish(&beheer(), &[ListKind::Whitelist], true)
        .await
        .unwrap();
    assert_eq!(
        published,
        [(ListKind::Whitelist, whitelist_before.next().get())]
    );
    assert_eq!(current(&node, ListKind::Ocl).await, ocl_before.next());
    assert!(
        !published_entries(&node).await[&ListKind::Ocl]
            .keys()
            .contains(&host)
    );
    assert_published_lists_consistent(&node).await;
}

/// `a`, `b`, …, `z`, `ba`, …: names made of letters, as Zorgaanbiedernamen must be.
fn letters(mut n: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    name.reverse();
    String::from_utf8(name).unwrap()
}

/// Finding 3 of issue 11: two nodes on one database approve, at the same moment, a
/// Zorgaanbieder that uses a host and the removal of that host. Each is fine on its own; one
/// of the two must be refused.
async fn of_two_conflicting_approvals_on_two_nodes_one_succeeds(db: TestDatabase) {
    const PAIRS: usize = 100;
    let node = published_node(db).await;
    let one = Arc::new(node.workflow_with_delay(3600));
    let two = node.replica_with_delay(3600).await.workflow;
    let mut refused = 0;
    for pair in 0..PAIRS {
        let host = format!("race{pair}.voorbeeld.nl");
        let added = one
            .submit(&loket(), parsed(&whitelist_upsert(&host, 0)))
            .await
            .unwrap();
        one.approve(&beheer(), &added).await.unwrap();
        let zorgaanbieder = one
            .submit(
                &loket(),
                parsed(&zorgaanbieder(
                    &format!("race{}@medmij", letters(pair)),
                    json!([gegevensdienst("4", &host)]),
                )),
            )
            .await
            .unwrap();
        let removal = two
            .submit(&loket(), parsed(&delete("whitelist", &host, 1)))
            .await
            .unwrap();
        let (a, b) = (one.clone(), two.clone());
        let (first, second) = tokio::join!(
            tokio::spawn(async move { a.approve(&beheer(), &zorgaanbieder).await }),
            tokio::spawn(async move { b.approve(&beheer2(), &removal).await }),
        );
        let outcomes = [first.unwrap(), second.unwrap()];
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "pair {pair}: {outcomes:?}"
        );
        for outcome in outcomes {
            if let Err(e) = outcome {
                assert!(
                    matches!(e, WorkflowError::Check(CheckError::Invalid(_))),
                    "pair {pair}: {e:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, PAIRS);
    assert_eq!(node.working_state_inconsistencies().await, []);
}
