//! The mutation part of the storage contract, on both backends: the life cycle, four eyes,
//! one open mutation per entry, filters, and the audit record that commits with each step.

use chrono::{DateTime, Utc};

use stelselnode::domain::ListKind;
use stelselnode::domain::{AuditOutcome, Decision, DecisionError, EntryChange, MutationStatus};
use stelselnode::storage::{AuditQuery, MutationQuery, Storage, StorageError};

use super::support::TestDatabase;
use super::support::mutations::{
    BEHEER, BEHEER2, LOKET, audit, decide, submission, t, whitelist_node,
};

on_both_backends!(
    a_mutation_is_submitted_approved_and_applied_with_its_audit_records,
    nobody_decides_on_their_own_mutation_and_only_the_submitter_withdraws,
    an_entry_has_one_open_mutation_even_under_concurrent_submissions,
    a_stale_base_version_is_a_conflict_at_submission_and_at_approval,
    mutations_and_audit_records_are_filtered,
);

async fn submit(
    storage: &dyn Storage,
    change: EntryChange,
    by: &str,
    at: DateTime<Utc>,
) -> Result<stelselnode::domain::MutationRecord, StorageError> {
    storage
        .submit_mutation(&submission(change, by, at), &audit(by, "submit", at))
        .await
}

async fn a_mutation_is_submitted_approved_and_applied_with_its_audit_records(db: TestDatabase) {
    let storage = db.storage.as_ref();
    let submitted = submit(
        storage,
        EntryChange::upsert(whitelist_node("nieuw.example.nl"), 0),
        LOKET,
        t(0),
    )
    .await
    .unwrap();
    assert_eq!(submitted.status, MutationStatus::Submitted);
    assert_eq!(submitted.entry_key, "nieuw.example.nl");
    assert_eq!(
        submitted.entry,
        Some(serde_json::json!({ "hostname": "nieuw.example.nl" }))
    );
    assert_eq!(submitted.submitted_by_subject, format!("CN={LOKET}"));
    // Submitting does not touch the working state.
    let state = storage.working_state(ListKind::Whitelist).await.unwrap();
    assert_eq!(state.version_of("nieuw.example.nl"), 0);

    let approved = decide(storage, submitted.id, Decision::Approve, BEHEER, t(60))
        .await
        .unwrap();
    assert_eq!(approved.status, MutationStatus::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some(BEHEER));
    assert_eq!(approved.decided_at, Some(t(60)));
    assert_eq!(approved.applied_at, Some(t(60)));
    let state = storage.working_state(ListKind::Whitelist).await.unwrap();
    assert_eq!(state.version_of("nieuw.example.nl"), 1);
    assert_eq!(
        storage.unpublished_changes().await.unwrap(),
        vec![(ListKind::Whitelist, t(60))]
    );

    let objects: Vec<_> = storage
        .audit_records(&AuditQuery::newest(10))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.object))
        .collect();
    let object = Some(format!("mutations/{}", submitted.id));
    assert_eq!(
        objects,
        vec![
            ("approve".to_owned(), object.clone()),
            ("submit".to_owned(), object)
        ]
    );
    // A decided mutation cannot be decided again.
    assert!(matches!(
        decide(storage, submitted.id, Decision::Approve, BEHEER2, t(61)).await,
        Err(StorageError::Decision(DecisionError::WrongState { .. }))
    ));
    assert!(matches!(
        decide(storage, 999_999, Decision::Approve, BEHEER2, t(61)).await,
        Err(StorageError::UnknownMutation(999_999))
    ));
}

async fn nobody_decides_on_their_own_mutation_and_only_the_submitter_withdraws(db: TestDatabase) {
    let storage = db.storage.as_ref();
    let own = submit(
        storage,
        EntryChange::upsert(whitelist_node("a.example.nl"), 0),
        BEHEER,
        t(0),
    )
    .await
    .unwrap();
    for decision in [
        Decision::Approve,
        Decision::Reject {
            reason: "no".into(),
        },
    ] {
        assert!(matches!(
            decide(storage, own.id, decision, BEHEER, t(1)).await,
            Err(StorageError::Decision(DecisionError::FourEyes { .. }))
        ));
    }
    assert!(matches!(
        decide(storage, own.id, Decision::Withdraw, BEHEER2, t(1)).await,
        Err(StorageError::Decision(DecisionError::NotSubmitter { .. }))
    ));
    let before = storage
        .audit_records(&AuditQuery::newest(100))
        .await
        .unwrap();
    assert_eq!(
        before.len(),
        1,
        "a refused decision commits no audit record"
    );
    let withdrawn = decide(storage, own.id, Decision::Withdraw, BEHEER, t(2))
        .await
        .unwrap();
    assert_eq!(withdrawn.status, MutationStatus::Withdrawn);
    assert_eq!(withdrawn.withdrawn_at, Some(t(2)));
    assert!(matches!(
        decide(storage, own.id, Decision::Approve, BEHEER2, t(3)).await,
        Err(StorageError::Decision(DecisionError::WrongState { .. }))
    ));

    let other = submit(
        storage,
        EntryChange::upsert(whitelist_node("a.example.nl"), 0),
        LOKET,
        t(4),
    )
    .await
    .unwrap();
    let rejected = decide(
        storage,
        other.id,
        Decision::Reject {
            reason: "ticket does not match".into(),
        },
        BEHEER,
        t(5),
    )
    .await
    .unwrap();
    assert_eq!(rejected.status, MutationStatus::Rejected);
    assert_eq!(
        rejected.rejection_reason.as_deref(),
        Some("ticket does not match")
    );
    assert_eq!(
        storage
            .working_state(ListKind::Whitelist)
            .await
            .unwrap()
            .version_of("a.example.nl"),
        0
    );
}

async fn an_entry_has_one_open_mutation_even_under_concurrent_submissions(db: TestDatabase) {
    let storage = db.storage.clone();
    let attempts = (0..8).map(|i| {
        let storage = storage.clone();
        tokio::spawn(async move {
            submit(
                storage.as_ref(),
                EntryChange::upsert(whitelist_node("c.example.nl"), 0),
                &format!("loket-{i}"),
                t(i),
            )
            .await
        })
    });
    let mut accepted = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(record) => accepted.push(record.id),
            Err(StorageError::OpenMutation { id, key, .. }) => {
                assert_eq!(key, "c.example.nl");
                assert!(id > 0, "the refusal names the open mutation");
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(accepted.len(), 1);
    // Once it is decided, the entry is free for the next change.
    decide(
        storage.as_ref(),
        accepted[0],
        Decision::Approve,
        BEHEER,
        t(100),
    )
    .await
    .unwrap();
    submit(
        storage.as_ref(),
        EntryChange::delete(ListKind::Whitelist, "c.example.nl", 1),
        LOKET,
        t(101),
    )
    .await
    .unwrap();
}

async fn a_stale_base_version_is_a_conflict_at_submission_and_at_approval(db: TestDatabase) {
    let storage = db.storage.as_ref();
    storage
        .apply_change(
            &EntryChange::upsert(whitelist_node("d.example.nl"), 0),
            t(0),
        )
        .await
        .unwrap();
    assert!(matches!(
        submit(
            storage,
            EntryChange::upsert(whitelist_node("d.example.nl"), 0),
            LOKET,
            t(1)
        )
        .await,
        Err(StorageError::StaleEntry {
            expected: 0,
            current: 1,
            ..
        })
    ));
    let delete = submit(
        storage,
        EntryChange::delete(ListKind::Whitelist, "d.example.nl", 1),
        LOKET,
        t(2),
    )
    .await
    .unwrap();
    // The entry moves on outside this mutation (an import, say) before approval.
    storage
        .apply_change(
            &EntryChange::upsert(whitelist_node("d.example.nl"), 1),
            t(3),
        )
        .await
        .unwrap();
    assert!(matches!(
        decide(storage, delete.id, Decision::Approve, BEHEER, t(4)).await,
        Err(StorageError::StaleEntry {
            expected: 1,
            current: 2,
            ..
        })
    ));
    let unchanged = storage.mutation(delete.id).await.unwrap().unwrap();
    assert_eq!(
        unchanged.status,
        MutationStatus::Submitted,
        "nothing changed"
    );
}

async fn mutations_and_audit_records_are_filtered(db: TestDatabase) {
    let storage = db.storage.as_ref();
    for (i, (host, by)) in [
        ("e1.example.nl", LOKET),
        ("e2.example.nl", LOKET),
        ("e3.example.nl", BEHEER),
    ]
    .into_iter()
    .enumerate()
    {
        submit(
            storage,
            EntryChange::upsert(whitelist_node(host), 0),
            by,
            t(i as i64 * 3600),
        )
        .await
        .unwrap();
    }
    let first = storage
        .mutations(&MutationQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    decide(storage, first[2].id, Decision::Approve, BEHEER, t(3 * 3600))
        .await
        .unwrap();
    let keys = |query: MutationQuery| async move {
        storage
            .mutations(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.entry_key)
            .collect::<Vec<_>>()
    };
    let query = || MutationQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        keys(query()).await,
        ["e3.example.nl", "e2.example.nl", "e1.example.nl"],
        "newest first"
    );
    assert_eq!(
        keys(MutationQuery {
            submitter: Some(LOKET.into()),
            status: Some(MutationStatus::Submitted),
            ..query()
        })
        .await,
        ["e2.example.nl"]
    );
    assert_eq!(
        keys(MutationQuery {
            submitter: Some(format!("CN={BEHEER}")),
            ..query()
        })
        .await,
        ["e3.example.nl"]
    );
    assert_eq!(
        keys(MutationQuery {
            submitted_before: Some(t(3600)),
            ..query()
        })
        .await,
        ["e1.example.nl"]
    );
    assert_eq!(
        keys(MutationQuery {
            submitted_after: Some(t(3600)),
            list: Some(ListKind::Whitelist),
            ..query()
        })
        .await,
        ["e3.example.nl", "e2.example.nl"]
    );
    assert!(
        keys(MutationQuery {
            list: Some(ListKind::Zal),
            ..query()
        })
        .await
        .is_empty()
    );

    let mut refused = audit(LOKET, "POST /mutations/{id}/approve", t(5 * 3600));
    refused.outcome = AuditOutcome::Refused;
    refused.reason = Some("the beheer role is required".into());
    storage.append_audit(&refused).await.unwrap();
    let audited = |query: AuditQuery| async move {
        storage
            .audit_records(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        audited(AuditQuery {
            outcome: Some(AuditOutcome::Refused),
            ..AuditQuery::newest(10)
        })
        .await,
        ["POST /mutations/{id}/approve"]
    );
    assert_eq!(
        audited(AuditQuery {
            actor: Some(LOKET.into()),
            action: Some("submit".into()),
            ..AuditQuery::newest(10)
        })
        .await,
        ["submit", "submit"]
    );
    assert_eq!(
        audited(AuditQuery {
            object: Some(format!("mutations/{}", first[2].id)),
            ..AuditQuery::newest(10)
        })
        .await,
        ["approve", "submit"]
    );
}
