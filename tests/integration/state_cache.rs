//! The working-state cache that checks and publications share (issue 12): one load for a
//! burst of callers on a cold cache, and after an approval the change itself instead of a
//! reload — always equal to what a fresh read of the database gives.

use std::sync::Arc;

use futures_util::future::join_all;

use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{EntryChange, ListKind, Role, Snapshot};
use stelselnode::storage::StateCache;

use super::support::TestDatabase;
use super::support::mutations::{actor, parsed, t, whitelist_node, whitelist_upsert};
use super::support::node::node;

on_both_backends!(
    a_cold_cache_is_read_once_for_a_burst_of_callers,
    after_an_approval_the_cache_holds_what_the_database_holds,
    a_change_by_another_writer_meanwhile_is_not_taken_for_the_approval,
    a_check_during_an_approval_waits_for_its_change_instead_of_reading_the_list,
);

/// The working state of every list, and its revisions, as the cache and the database see them.
fn same_state(cached: &Snapshot, fresh: &Snapshot) {
    for list in ListKind::ALL {
        let (c, f) = (cached.list(list), fresh.list(list));
        assert_eq!(c.standing.revision, f.standing.revision, "{list} revision");
        assert_eq!(c.state, f.state, "{list} working state");
    }
}

async fn a_cold_cache_is_read_once_for_a_burst_of_callers(db: TestDatabase) {
    let cache = StateCache::new(db.storage.clone());
    let snapshots: Vec<Arc<Snapshot>> = join_all((0..16).map(|_| cache.current()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for other in &snapshots[1..] {
        assert!(
            Arc::ptr_eq(&snapshots[0], other),
            "every caller waited for the one read"
        );
    }
    same_state(&snapshots[0], &db.storage.snapshot().await.unwrap());
}

async fn after_an_approval_the_cache_holds_what_the_database_holds(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let cache = node.services.publisher.state().clone();
    let before = cache.current().await.unwrap();
    let (loket, beheer) = (
        actor("loket", &[Role::Loket]),
        actor("beheer", &[Role::Beheer]),
    );
    let record = node
        .services
        .workflow
        .submit(&loket, parsed(&whitelist_upsert("medmij.cache.nl", 0)))
        .await
        .unwrap();
    let approval = node
        .services
        .workflow
        .approve(&beheer, &record)
        .await
        .unwrap();
    assert!(approval.publication.unwrap().published);

    let after = cache.current().await.unwrap();
    let fresh = node.db.storage.snapshot().await.unwrap();
    same_state(&after, &fresh);
    assert!(
        after
            .list(ListKind::Whitelist)
            .state
            .entries
            .contains_key("medmij.cache.nl")
    );
    for list in [ListKind::Zal, ListKind::Ocl, ListKind::Gnl] {
        assert!(
            Arc::ptr_eq(&before.list(list).state, &after.list(list).state),
            "{list} did not change and was not read again"
        );
    }
}

async fn a_change_by_another_writer_meanwhile_is_not_taken_for_the_approval(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    let cache = StateCache::new(node.db.storage.clone());
    let storage = &node.db.storage;
    let before = cache.current().await.unwrap();

    // Another replica's change reaches the Whitelist, then "ours" does.
    let theirs = EntryChange::upsert(whitelist_node("medmij.hunne.nl"), 0);
    let ours = EntryChange::upsert(whitelist_node("medmij.onze.nl"), 0);
    storage.apply_change(&theirs, t(0)).await.unwrap();
    storage.apply_change(&ours, t(1)).await.unwrap();
    cache
        .change_turn()
        .await
        .applied(before.clone(), &ours)
        .await;

    let after = cache.current().await.unwrap();
    same_state(&after, &storage.snapshot().await.unwrap());
    assert!(
        after
            .list(ListKind::Whitelist)
            .state
            .entries
            .contains_key("medmij.hunne.nl"),
        "the other writer's change is not lost"
    );

    // With nothing in between, the change is taken as it is, and equals a fresh read.
    let before = cache.current().await.unwrap();
    let next = EntryChange::upsert(whitelist_node("medmij.volgende.nl"), 0);
    storage.apply_change(&next, t(2)).await.unwrap();
    cache.change_turn().await.applied(before, &next).await;
    same_state(
        &cache.current().await.unwrap(),
        &storage.snapshot().await.unwrap(),
    );
}

async fn a_check_during_an_approval_waits_for_its_change_instead_of_reading_the_list(
    db: TestDatabase,
) {
    let cache = StateCache::new(db.storage.clone());
    let before = cache.current().await.unwrap();
    let reads = cache.reads();
    let ours = EntryChange::upsert(whitelist_node("medmij.onze.nl"), 0);
    let turn = cache.change_turn().await;
    db.storage.apply_change(&ours, t(0)).await.unwrap();
    // The check starts first and sees the new revision before the cache has the change.
    let (checked, ()) = tokio::join!(cache.current(), turn.applied(before, &ours));
    assert_eq!(cache.reads(), reads, "the check read no list again");
    same_state(&checked.unwrap(), &db.storage.snapshot().await.unwrap());
}
