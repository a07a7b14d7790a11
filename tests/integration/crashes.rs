//! Crashes for real (issue 11, point 4): the `stelselnode` binary serves while loket and
//! beheer submit and approve without pause, and is killed with SIGKILL at pseudo-random
//! moments and started again, on both backends. Afterwards every mutation that got a 2xx is
//! there in the state its answer said, every list's Volgnummers run without a gap, every
//! stored version verifies with `stelselnode verify`, and the current published set is
//! consistent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::support::postgres_url;
use super::support::process::{
    Acknowledged, NodeFiles, nothing_acknowledged_is_lost, staff_at_work,
};

/// How often the node is killed, per backend.
const KILLS: usize = 20;

async fn killed_at_random_moments_loses_nothing_it_acknowledged(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let files = NodeFiles::prepare(dir.path(), database_url);
    let mut acknowledged = Acknowledged::default();
    // xorshift: reproducible moments between 150 and 900 ms after the node is ready.
    let mut random: u64 = 0x00c0_ffee;
    for round in 0..KILLS {
        let mut node = files.serve().await;
        let stop = Arc::new(AtomicBool::new(false));
        let work = {
            let (stop, files) = (stop.clone(), &files);
            async move { staff_at_work(files, &format!("r{round}"), stop).await }
        };
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let moment = Duration::from_millis(150 + random % 750);
        let kill = async {
            tokio::time::sleep(moment).await;
            node.kill().unwrap(); // SIGKILL
            node.wait().unwrap();
            stop.store(true, Ordering::Relaxed);
        };
        let (round_acknowledged, ()) = tokio::join!(work, kill);
        acknowledged.extend(round_acknowledged);
    }
    // One more start: recovery itself must work, then the node is stopped for the checks.
    let mut node = files.serve().await;
    node.kill().unwrap();
    node.wait().unwrap();

    assert!(
        acknowledged.submitted.len() >= KILLS,
        "the load did reach the node"
    );
    nothing_acknowledged_is_lost(&files, &acknowledged).await;
    eprintln!(
        "{}: {KILLS} kills, {} mutations acknowledged, {} approvals acknowledged, 0 lost",
        files.database_url.split(':').next().unwrap_or_default(),
        acknowledged.submitted.len(),
        acknowledged.approved.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_killed_at_random_moments_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    killed_at_random_moments_loses_nothing_it_acknowledged(url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_killed_at_random_moments_loses_nothing_it_acknowledged() {
    killed_at_random_moments_loses_nothing_it_acknowledged(postgres_url().await).await;
}
