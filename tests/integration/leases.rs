//! Leases on singleton work (issue 24): the store's contract on both backends, the lease
//! keeper of a replica, and a takeover between real node processes killed with SIGKILL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use stelselnode::leases::{Leases, Singleton};
use stelselnode::storage::{self, AuditQuery, LeaseStore};

use super::support::http_client::plain_get;
use super::support::process::NodeFiles;
use super::support::{TestDatabase, postgres_url};

on_both_backends!(
    a_lease_has_one_holder_until_it_expires,
    a_released_lease_is_free_at_once,
    replicas_racing_for_a_free_lease_get_one_holder,
    a_replica_keeps_its_lease_and_gives_it_up_when_it_stops,
);

const SHORT: Duration = Duration::from_millis(300);

/// Claims `name` for `holder` until the database's clock has passed the lease's expiry.
async fn claim_once_expired(store: &dyn LeaseStore, name: &str, holder: &str) -> i64 {
    loop {
        if let Some(fence) = store.claim_lease(name, holder, SHORT).await.unwrap() {
            return fence;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_lease_has_one_holder_until_it_expires(db: TestDatabase) {
    let store = db.storage.as_ref();
    assert_eq!(store.claim_lease("job", "a", SHORT).await.unwrap(), Some(1));
    assert_eq!(store.claim_lease("job", "b", SHORT).await.unwrap(), None);
    // The holder renews it, keeping its fence; another job's lease is separate.
    assert_eq!(store.claim_lease("job", "a", SHORT).await.unwrap(), Some(1));
    assert_eq!(
        store.claim_lease("other", "b", SHORT).await.unwrap(),
        Some(1)
    );
    let held = store.leases().await.unwrap();
    assert_eq!(
        held.iter()
            .map(|l| (l.name.as_str(), l.holder.as_str(), l.fence))
            .collect::<Vec<_>>(),
        [("job", "a", 1), ("other", "b", 1)]
    );
    assert!(held[0].expires_in > chrono::Duration::zero());
    assert!(held[0].expires_in <= chrono::Duration::milliseconds(300));
    // Once it expired, another replica takes it with a new fence; the old holder's renewal
    // is refused, and its fence tells it that it lost the lease.
    assert_eq!(claim_once_expired(store, "job", "b").await, 2);
    assert_eq!(store.claim_lease("job", "a", SHORT).await.unwrap(), None);
    // Releasing with an old fence does nothing.
    store.release_lease("job", "a", 1).await.unwrap();
    assert_eq!(store.claim_lease("job", "a", SHORT).await.unwrap(), None);
    assert_eq!(claim_once_expired(store, "job", "a").await, 3);
}

async fn a_released_lease_is_free_at_once(db: TestDatabase) {
    let store = db.storage.as_ref();
    let long = Duration::from_secs(3600);
    assert_eq!(store.claim_lease("job", "a", long).await.unwrap(), Some(1));
    store.release_lease("job", "a", 1).await.unwrap();
    assert_eq!(store.claim_lease("job", "b", long).await.unwrap(), Some(2));
}

async fn replicas_racing_for_a_free_lease_get_one_holder(db: TestDatabase) {
    let claims = (0..8).map(|i| {
        let storage = db.storage.clone();
        tokio::spawn(async move {
            storage
                .claim_lease("job", &format!("replica-{i}"), Duration::from_secs(60))
                .await
                .unwrap()
        })
    });
    let mut fences = Vec::new();
    for claim in claims {
        fences.extend(claim.await.unwrap());
    }
    assert_eq!(fences, [1], "exactly one replica holds the lease");
}

fn held(leases: &Leases, job: Singleton) -> bool {
    leases.status().get(&job).is_some_and(|s| s.fence.is_some())
}

async fn a_replica_keeps_its_lease_and_gives_it_up_when_it_stops(db: TestDatabase) {
    // The shortest lease the configuration allows: renewals every second, each with a second
    // to finish even on a busy machine.
    let ttl = Duration::from_secs(3);
    let first = Arc::new(Leases::new(db.storage.clone(), "first".into(), ttl));
    let second = Arc::new(Leases::new(db.storage.clone(), "second".into(), ttl));
    let (stop_first, stopping_first) = watch::channel(false);
    let (stop_second, stopping_second) = watch::channel(false);
    let mut lease = first.keep(Singleton::Retention, stopping_first);
    let fence = lease.acquired().await.unwrap();
    let mut standby = second.keep(Singleton::Retention, stopping_second);
    // Held across several renewals: the standby never gets it meanwhile.
    for _ in 0..2 {
        tokio::time::sleep(ttl).await;
        assert_eq!(lease.fence(), Some(fence));
        assert!(!standby.held());
    }
    assert!(held(&first, Singleton::Retention));
    stop_first.send(true).unwrap();
    let taken = standby.acquired().await.unwrap();
    assert_eq!(taken, fence + 1);
    let status = first.status()[&Singleton::Retention];
    assert_eq!((status.acquired, status.released, status.lost), (1, 1, 0));
    assert!(!lease.held());
    stop_second.send(true).unwrap();
}

/// Waits until retention has run `runs` times (each run leaves an audit record).
async fn retention_has_run(files: &NodeFiles, runs: usize) {
    let storage = storage::connect(&files.database_url).await.unwrap();
    let query = AuditQuery {
        action: Some("retention run".into()),
        ..AuditQuery::newest(1000)
    };
    let started = Instant::now();
    loop {
        let done = storage.audit_records(&query).await.unwrap().len();
        assert!(done <= runs, "retention ran {done} times, not {runs}");
        if done == runs {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two replicas on one PostgreSQL: the first started holds every singleton job's lease; it
/// is killed with SIGKILL (no release), and the other takes every lease over within the
/// lease time plus one polling interval, and runs the jobs (retention runs at once).
#[tokio::test(flavor = "multi_thread")]
async fn the_replica_holding_the_leases_is_killed_and_another_takes_its_work_over() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    let first = NodeFiles::prepare(dir.path(), postgres_url().await)
        .with_setting("SERVER_LEASE_SECONDS", "3")
        .with_setting("ARCHIVE_NIGHTLY_DIR", bundles.to_str().unwrap());
    let second = first.replica();
    let mut holder = first.serve().await;
    first.holds_every_lease().await;
    let mut standby = second.serve().await;
    let (_, holders) = second.lease_holders().await;
    let (first_name, _) = first.lease_holders().await;
    assert!(holders.iter().all(|(_, h)| *h == first_name), "{holders:?}");
    // Retention runs at once on the holder only.
    retention_has_run(&first, 1).await;

    holder.kill().unwrap(); // SIGKILL: the leases are not released
    holder.wait().unwrap();
    let takeover = second.holds_every_lease().await;
    // A lease lasts 3 s after its last renewal; the standby looks every second.
    assert!(
        takeover <= Duration::from_secs(3 + 1 + 2),
        "took {takeover:?}"
    );
    retention_has_run(&second, 2).await;
    let metrics = plain_get(second.ops(), "/metrics").await;
    let metrics = String::from_utf8(metrics.body).unwrap();
    for job in Singleton::ALL {
        let held = format!("stelselnode_lease_held{{lease=\"{}\"}} 1", job.as_str());
        assert!(metrics.contains(&held), "{held}");
    }
    eprintln!("lease takeover after SIGKILL of the holder: {takeover:?} (lease 3 s)");
    standby.kill().unwrap();
    standby.wait().unwrap();
}
