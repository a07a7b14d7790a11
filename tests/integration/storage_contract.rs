//! The storage contract: the same tests against SQLite and PostgreSQL.

use chrono::{DateTime, Duration, Utc};

use stelselnode::domain::{
    AnyEntry, Hostname, Lijst, ListEntries, ListKind, MedMijNode, Volgnummer,
};
use stelselnode::domain::{AuditOutcome, AuditRecord, EntryChange};
use stelselnode::import::{ImportError, import_document};
use stelselnode::sample::{SampleSize, network};
use stelselnode::storage::{AuditQuery, StorageError};
use stelselnode::xml::parse_list;

use super::support::{TestDatabase, execute_sql, official_example};

on_both_backends!(
    a_new_database_has_empty_lists_starting_at_one,
    import_stores_entries_and_continues_the_volgnummer,
    import_replaces_the_working_state_and_keeps_versions_of_unchanged_entries,
    import_never_lowers_the_volgnummer,
    a_refused_import_stores_nothing,
    changes_are_based_on_the_version_they_saw,
    concurrent_changes_of_one_entry_give_one_winner,
    audit_records_round_trip_and_are_never_updated,
    instants_compare_correctly,
    migrations_are_idempotent,
);

fn actor() -> AuditRecord {
    AuditRecord {
        at: at(0),
        actor_subject: "CN=test".into(),
        actor_fingerprint: Some("ab".repeat(32)),
        role: Some("beheer".into()),
        action: "import".into(),
        object: Some("whitelist".into()),
        on_behalf_of: Some("deelnemer".into()),
        outcome: AuditOutcome::Allowed,
        reason: None,
    }
}

/// A fixed instant plus `seconds`, with microseconds (both backends keep them).
fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn node(host: &str) -> AnyEntry {
    AnyEntry::MedMijNode(MedMijNode {
        hostname: Hostname::parse(host).unwrap(),
    })
}

async fn import_example(db: &TestDatabase, list: ListKind) -> Lijst {
    let bytes = std::fs::read(official_example(list)).unwrap();
    import_document(db.storage.as_ref(), list, &bytes, "cli:test", at(0))
        .await
        .unwrap();
    parse_list(&bytes, list).unwrap()
}

async fn a_new_database_has_empty_lists_starting_at_one(db: TestDatabase) {
    for list in ListKind::ALL {
        let head = db.storage.list_head(list).await.unwrap();
        assert_eq!(head.last_volgnummer, None);
        assert_eq!(head.next_volgnummer(), Volgnummer::FIRST);
        assert!(
            db.storage
                .working_state(list)
                .await
                .unwrap()
                .entries
                .is_empty()
        );
    }
}

async fn import_stores_entries_and_continues_the_volgnummer(db: TestDatabase) {
    for list in ListKind::ALL {
        let imported = import_example(&db, list).await;
        let state = db.storage.working_state(list).await.unwrap();
        assert_eq!(
            state.entries, imported.entries,
            "{list}: the stored entries are the imported ones"
        );
        let head = db.storage.list_head(list).await.unwrap();
        assert_eq!(head.imported_volgnummer, Some(imported.volgnummer));
        assert_eq!(head.next_volgnummer(), imported.volgnummer.next(), "{list}");
        assert_eq!(head.imported_at, Some(at(0)));
    }
    let audit = db
        .storage
        .audit_records(&AuditQuery::newest(10))
        .await
        .unwrap();
    assert_eq!(audit.len(), 4, "every import is audited");
    assert_eq!(
        audit[0].object.as_deref(),
        Some("whitelist Volgnummer 28654")
    );
}

async fn import_replaces_the_working_state_and_keeps_versions_of_unchanged_entries(
    db: TestDatabase,
) {
    let storage = db.storage.as_ref();
    let first = network(SampleSize::realistic(50), at(0));
    storage
        .import_list(&first.whitelist, at(0), &actor())
        .await
        .unwrap();
    let before = storage.working_state(ListKind::Whitelist).await.unwrap();

    // The second import drops one host and adds another.
    let ListEntries::Whitelist(nodes) = &first.whitelist.entries else {
        unreachable!()
    };
    let dropped = nodes.as_slice()[0].hostname.to_string();
    let kept = nodes.as_slice()[1].hostname.to_string();
    let mut entries: Vec<MedMijNode> = nodes.as_slice()[1..].to_vec();
    entries.push(MedMijNode {
        hostname: Hostname::parse("nieuw.example.nl").unwrap(),
    });
    let second = Lijst {
        volgnummer: Volgnummer::new(5).unwrap(),
        entries: ListEntries::Whitelist(stelselnode::domain::EntrySet::new(entries).unwrap()),
        ..first.whitelist.clone()
    };
    let outcome = storage.import_list(&second, at(1), &actor()).await.unwrap();
    assert_eq!(
        (outcome.entries, outcome.changed, outcome.removed),
        (100, 1, 1)
    );

    let after = storage.working_state(ListKind::Whitelist).await.unwrap();
    assert_eq!(after.entries, second.entries);
    assert_eq!(
        after.version_of(&kept),
        before.version_of(&kept),
        "an unchanged entry keeps its version"
    );
    assert!(
        after.version_of(&dropped) > before.version_of(&dropped),
        "a removal is a new version"
    );
    assert_eq!(
        after.removed_keys().collect::<Vec<_>>(),
        vec![dropped.as_str()]
    );
    assert_eq!(after.version_of("nieuw.example.nl"), 1);

    // Importing the same list again changes nothing.
    let again = storage.import_list(&second, at(2), &actor()).await.unwrap();
    assert_eq!((again.changed, again.removed), (0, 0));
    assert_eq!(
        storage.working_state(ListKind::Whitelist).await.unwrap(),
        after
    );
}

async fn import_never_lowers_the_volgnummer(db: TestDatabase) {
    let mut list = import_example(&db, ListKind::Whitelist).await;
    list.volgnummer = Volgnummer::new(3).unwrap();
    let outcome = db
        .storage
        .import_list(&list, at(1), &actor())
        .await
        .unwrap();
    assert_eq!(
        outcome.head.last_volgnummer,
        Some(Volgnummer::new(28654).unwrap())
    );
    assert_eq!(
        outcome.head.imported_volgnummer,
        Some(Volgnummer::new(3).unwrap())
    );
    assert_eq!(outcome.head.next_volgnummer().get(), 28655);
}

async fn a_refused_import_stores_nothing(db: TestDatabase) {
    let good = import_example(&db, ListKind::Zal).await;
    let audit_before = db
        .storage
        .audit_records(&AuditQuery::newest(100))
        .await
        .unwrap()
        .len();
    let bad = std::fs::read_to_string(official_example(ListKind::Zal))
        .unwrap()
        .replace("<Volgnummer>6<", "<Volgnummer>99<")
        .replacen(
            "https://rcf-rso.nl/rcf/fhir-stu3",
            "https://rcf-rso.nl/rcf/fhir-stu3/",
            1,
        );
    let err = import_document(
        db.storage.as_ref(),
        ListKind::Zal,
        bad.as_bytes(),
        "cli:test",
        at(5),
    )
    .await
    .unwrap_err();
    let ImportError::Refused { violations, .. } = err else {
        panic!("expected a refusal, got {err}")
    };
    assert!(
        violations.as_slice()[0]
            .path
            .ends_with("/ResourceEndpointuri"),
        "{violations}"
    );
    assert_eq!(
        db.storage
            .working_state(ListKind::Zal)
            .await
            .unwrap()
            .entries,
        good.entries
    );
    assert_eq!(
        db.storage
            .list_head(ListKind::Zal)
            .await
            .unwrap()
            .next_volgnummer()
            .get(),
        7
    );
    assert_eq!(
        db.storage
            .audit_records(&AuditQuery::newest(100))
            .await
            .unwrap()
            .len(),
        audit_before
    );
}

async fn changes_are_based_on_the_version_they_saw(db: TestDatabase) {
    let storage = db.storage.as_ref();
    assert_eq!(
        storage
            .apply_change(&EntryChange::upsert(node("a.example.nl"), 0), at(0))
            .await
            .unwrap(),
        1
    );
    // Creating it again as if it did not exist is stale.
    let stale = storage
        .apply_change(&EntryChange::upsert(node("a.example.nl"), 0), at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            StorageError::StaleEntry {
                expected: 0,
                current: 1,
                ..
            }
        ),
        "{stale}"
    );
    let delete = EntryChange::delete(ListKind::Whitelist, "a.example.nl", 1);
    assert_eq!(storage.apply_change(&delete, at(2)).await.unwrap(), 2);
    let state = storage.working_state(ListKind::Whitelist).await.unwrap();
    assert!(state.entries.is_empty());
    assert_eq!(
        state.version_of("a.example.nl"),
        2,
        "the tombstone keeps the version"
    );
    assert!(matches!(
        storage.apply_change(&delete, at(3)).await,
        Err(StorageError::StaleEntry { current: 2, .. })
    ));
    // Re-adding is based on the tombstone's version.
    assert_eq!(
        storage
            .apply_change(&EntryChange::upsert(node("a.example.nl"), 2), at(4))
            .await
            .unwrap(),
        3
    );
}

async fn concurrent_changes_of_one_entry_give_one_winner(db: TestDatabase) {
    let storage = db.storage.clone();
    storage
        .apply_change(&EntryChange::upsert(node("b.example.nl"), 0), at(0))
        .await
        .unwrap();
    let attempts = (0..8).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move {
            storage
                .apply_change(&EntryChange::upsert(node("b.example.nl"), 1), at(1))
                .await
        })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(version) => {
                assert_eq!(version, 2);
                won += 1;
            }
            Err(StorageError::StaleEntry { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 1);
}

async fn audit_records_round_trip_and_are_never_updated(db: TestDatabase) {
    let mut record = actor();
    record.outcome = AuditOutcome::Refused;
    record.reason = Some("no role".into());
    db.storage.append_audit(&record).await.unwrap();
    assert_eq!(
        db.storage
            .audit_records(&AuditQuery::newest(1))
            .await
            .unwrap(),
        vec![record]
    );
    let update = execute_sql(&db, "UPDATE audit_log SET outcome = 'allowed'").await;
    assert!(update.unwrap_err().to_string().contains("never updated"));
}

async fn instants_compare_correctly(db: TestDatabase) {
    // Written out of order; read back ordered and filtered by instant, exactly, including
    // instants before 1970 and a one-microsecond difference.
    let base = at(0);
    let instants = [
        base,
        base - Duration::seconds(1),
        DateTime::from_timestamp(-86_400, 0).unwrap(),
        base + Duration::microseconds(1),
        base + Duration::days(400),
    ];
    for (i, instant) in instants.iter().enumerate() {
        let record = AuditRecord {
            at: *instant,
            object: Some(i.to_string()),
            ..actor()
        };
        db.storage.append_audit(&record).await.unwrap();
    }
    let all: Vec<_> = db
        .storage
        .audit_records(&AuditQuery::newest(10))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.at)
        .collect();
    let mut sorted = instants.to_vec();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted);
    let window = AuditQuery {
        since: Some(base),
        until: Some(base + Duration::days(1)),
        ..AuditQuery::newest(10)
    };
    let inside: Vec<_> = db
        .storage
        .audit_records(&window)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(
        inside,
        vec![base + Duration::microseconds(1), base],
        "since is inclusive, until exclusive"
    );
}

async fn migrations_are_idempotent(db: TestDatabase) {
    db.storage.migrate().await.unwrap();
    db.storage.migrate().await.unwrap();
    assert!(
        db.storage
            .working_state(ListKind::Zal)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

#[tokio::test]
async fn sqlite_files_are_in_wal_mode() {
    let db = super::support::sqlite().await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}
