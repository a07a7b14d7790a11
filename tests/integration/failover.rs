//! The failover drill (issue 24, item 3): two `serve` replicas on a Patroni-managed
//! PostgreSQL 15 pair (etcd, synchronous replication), under continuous submit + approve load
//! on both and node-listener reads from both. The primary's postmaster is killed with SIGKILL,
//! twice: Patroni promotes the other member, the replicas follow it through their multi-host
//! URL, writes recover, and the old primary comes back as the synchronous standby. Then the
//! replica holding the singleton leases is killed, and the other takes its work over.
//!
//! Asserted: no acknowledged mutation lost, Volgnummers without gap or duplicate, every stored
//! version verifies, every node-listener request answered 200 within a second, writes
//! unavailable for at most 30 s, the leases taken over within their time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::support::http_client::request;
use super::support::patroni::PatroniCluster;
use super::support::process::{
    Acknowledged, NodeFiles, nothing_acknowledged_is_lost, staff_at_work,
};

/// Primaries killed.
const KILLS: usize = 2;
/// How long the load runs before, between and after the kills.
const LOAD: Duration = Duration::from_secs(3);
/// Seconds a singleton lease lasts without renewal, for this drill.
const LEASE_SECONDS: u64 = 3;

/// Node-listener requests and the ones that were not a 200 within a second.
#[derive(Default)]
struct Reads {
    answered: usize,
    failures: Vec<String>,
}

/// Fetches the Whitelist from every replica in turn, each on a new connection, until `stop`.
async fn nodes_reading(replicas: &[&NodeFiles], stop: &AtomicBool) -> Reads {
    let mut reads = Reads::default();
    let connectors: Vec<_> = replicas.iter().map(|r| r.node_connector()).collect();
    while !stop.load(Ordering::Relaxed) {
        for (replica, connector) in replicas.iter().zip(&connectors) {
            let started = Instant::now();
            let answer = request(
                connector,
                replica.node(),
                "GET",
                "/lists/whitelist",
                &[],
                b"",
            )
            .await;
            let took = started.elapsed();
            match answer {
                Ok(answer) if answer.status == 200 && took <= Duration::from_secs(1) => {
                    reads.answered += 1;
                }
                Ok(answer) => reads
                    .failures
                    .push(format!("{} after {took:?}", answer.status)),
                Err(e) => reads.failures.push(e),
            }
        }
    }
    reads
}

async fn create_database(cluster: &PatroniCluster) {
    let primary = &cluster.members[cluster.primary().expect("a primary leads")];
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", primary.pg_port);
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("CREATE DATABASE stelselnode")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patroni_failover_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    std::fs::create_dir(&cluster_dir).unwrap();
    let cluster = PatroniCluster::start(&cluster_dir).await;
    create_database(&cluster).await;
    // Shared by both replicas, as a deployment shares it (an NFS mount, say).
    let bundles = dir.path().join("bundles");
    let first = NodeFiles::prepare(&dir.path().join("node"), cluster.url("stelselnode"))
        .with_setting("SERVER_LEASE_SECONDS", &LEASE_SECONDS.to_string())
        .with_setting("ARCHIVE_NIGHTLY_DIR", bundles.to_str().unwrap());
    let second = first.replica();
    let mut replicas = [first.serve().await, second.serve().await];
    first.whitelist_dev_node().await;
    second.until_dev_node_served().await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut promotions = Vec::new();
    let mut kills = Vec::new();
    let drill = async {
        tokio::time::sleep(LOAD).await;
        for _ in 0..KILLS {
            let old = cluster.primary().expect("a primary leads");
            let postmaster = cluster.members[old].postmaster().expect("it runs");
            let status = std::process::Command::new("kill")
                .args(["-9", &postmaster.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            kills.push(Instant::now());
            let promoted = cluster
                .until("the other member is promoted", |c| {
                    c.primary().is_some_and(|p| p != old)
                })
                .await;
            let rejoined = cluster
                .until("the old primary is back as the synchronous standby", |c| {
                    c.members[old].answers("sync")
                })
                .await;
            promotions.push((
                cluster.members[old].name.clone(),
                promoted,
                promoted + rejoined,
            ));
            tokio::time::sleep(LOAD).await;
        }
        stop.store(true, Ordering::Relaxed);
    };
    let both = [&first, &second];
    let (on_first, on_second, reads, ()) = tokio::join!(
        staff_at_work(&first, "first", stop.clone()),
        staff_at_work(&second, "second", stop.clone()),
        nodes_reading(&both, &stop),
        drill,
    );
    let mut acknowledged = Acknowledged::default();
    acknowledged.extend(on_first);
    acknowledged.extend(on_second);
    let write_unavailability = acknowledged.longest_gap();

    // The replica holding the singleton leases dies; the other takes its work over.
    let holder = match first.lease_holders().await {
        (me, holders) if holders.iter().all(|(_, h)| *h == me) => 0,
        _ => 1,
    };
    let survivor = [&first, &second][1 - holder];
    replicas[holder].kill().unwrap();
    replicas[holder].wait().unwrap();
    let takeover = survivor.holds_every_lease().await;
    replicas[1 - holder].kill().unwrap();
    replicas[1 - holder].wait().unwrap();

    nothing_acknowledged_is_lost(&first, &acknowledged).await;
    for (member, promoted, rejoined) in &promotions {
        eprintln!(
            "primary {member} killed: the other promoted after {promoted:?}, {member} back as \
             the synchronous standby after {rejoined:?}"
        );
    }
    eprintln!(
        "failover drill: {KILLS} kills, {} mutations and {} approvals acknowledged, 0 lost; \
         writes unavailable for at most {write_unavailability:?}; {} node-listener requests, \
         {} failures; lease takeover {takeover:?} (lease {LEASE_SECONDS} s)",
        acknowledged.submitted.len(),
        acknowledged.approved.len(),
        reads.answered,
        reads.failures.len()
    );
    for (n, killed) in kills.iter().enumerate() {
        assert!(
            acknowledged.at.iter().any(|at| at > killed),
            "writes recovered after kill {}",
            n + 1
        );
    }
    assert_eq!(
        reads.failures,
        Vec::<String>::new(),
        "node-listener failures"
    );
    assert!(reads.answered > 100);
    assert!(
        write_unavailability <= Duration::from_secs(30),
        "writes were unavailable for {write_unavailability:?}"
    );
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS * 4 / 3 + 2),
        "the leases were taken over after {takeover:?}"
    );
}
