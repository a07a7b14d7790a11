//! Crashes for real (issue 11, point 4): the `stelselnode` binary serves while loket and
//! beheer submit and approve without pause, and is killed with SIGKILL at pseudo-random
//! moments and started again, on both backends. Afterwards every mutation that got a 2xx is
//! there in the state its answer said, every list's Volgnummers run without a gap, every
//! stored version verifies with `stelselnode verify`, and the current published set is
//! consistent.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use stelselnode::admin_client::StaffRequest;
use stelselnode::domain::{ListEntries, ListKind, MutationStatus};
use stelselnode::integrity;
use stelselnode::publication::assemble;
use stelselnode::storage::{self, Storage};
use stelselnode::xml::parse_list;

use super::support::postgres_url;
use super::support::process::NodeFiles;

/// How often the node is killed, per backend.
const KILLS: usize = 20;

/// What the staff saw answered: mutations created, and approvals answered 200 (with the
/// status the answer gave).
#[derive(Default)]
struct Acknowledged {
    submitted: Vec<i64>,
    approved: Vec<(i64, MutationStatus)>,
}

/// Submits and approves new Whitelist hosts until `stop`; a request the crash cut off simply
/// gets no acknowledgement.
async fn staff_at_work(files: &NodeFiles, round: usize, stop: Arc<AtomicBool>) -> Acknowledged {
    let (loket, beheer) = (files.client("loket"), files.client("beheer"));
    let mut acknowledged = Acknowledged::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = json!({
            "list": "whitelist", "operation": "upsert", "base_version": 0,
            "entry": { "hostname": format!("r{round}n{n}.crash.voorbeeld.nl") },
            "on_behalf_of": "Een PGO", "reference": "CRASH-1"
        });
        let Ok(created) = loket.send(&StaffRequest::Submit(body)).await else {
            continue;
        };
        let Some(id) = created.body["id"]
            .as_i64()
            .filter(|_| created.status == 201)
        else {
            continue;
        };
        acknowledged.submitted.push(id);
        if let Ok(approved) = beheer.send(&StaffRequest::Approve(id)).await
            && approved.status == 200
        {
            let status = serde_json::from_value(approved.body["status"].clone()).unwrap();
            acknowledged.approved.push((id, status));
        }
    }
    acknowledged
}

/// `verify` on one stored version: its bytes against its signature and the node's CA.
fn verifies(files: &NodeFiles, list: ListKind, bytes: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (list_file, signature_file) = (dir.path().join("list.xml"), dir.path().join("sig.xml"));
    std::fs::write(&list_file, bytes).unwrap();
    std::fs::write(&signature_file, signature).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .arg("verify")
        .arg("--list-file")
        .arg(&list_file)
        .arg("--signature")
        .arg(&signature_file)
        .arg("--ca")
        .arg(files.dir.join("ca.pem"))
        .env("STELSELNODE_LOG", "warn")
        .output()
        .unwrap();
    let ok = output.status.success();
    if !ok {
        eprintln!("{list}: {}", String::from_utf8_lossy(&output.stdout));
    }
    ok
}

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
            async move { staff_at_work(files, round, stop).await }
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
        acknowledged.submitted.extend(round_acknowledged.submitted);
        acknowledged.approved.extend(round_acknowledged.approved);
    }
    // One more start: recovery itself must work, then the node is stopped for the checks.
    let mut node = files.serve().await;
    node.kill().unwrap();
    node.wait().unwrap();

    let storage: Arc<dyn Storage> = storage::connect(&files.database_url).await.unwrap();
    assert!(
        acknowledged.submitted.len() >= KILLS,
        "the load did reach the node"
    );
    for id in &acknowledged.submitted {
        assert!(
            storage.mutation(*id).await.unwrap().is_some(),
            "mutation {id} is lost"
        );
    }
    for (id, answered) in &acknowledged.approved {
        let stored = storage.mutation(*id).await.unwrap().unwrap().status;
        let expected = match answered {
            // Published with the answer, or approved and published after it.
            MutationStatus::Approved => [MutationStatus::Approved, MutationStatus::Published],
            status => [*status, *status],
        };
        assert!(
            expected.contains(&stored),
            "mutation {id}: {answered} then {stored}"
        );
    }
    let mut current = std::collections::BTreeMap::<ListKind, ListEntries>::new();
    for list in ListKind::ALL {
        let versions = storage.versions(list).await.unwrap();
        let numbers: Vec<i64> = versions.iter().map(|v| v.volgnummer.get()).collect();
        let first = numbers[0];
        assert_eq!(
            numbers,
            (first..first + numbers.len() as i64).collect::<Vec<_>>(),
            "{list}: Volgnummers without gaps or duplicates"
        );
        for record in &versions {
            let stored = storage
                .version(list, record.volgnummer)
                .await
                .unwrap()
                .unwrap();
            let bytes = assemble(&stored).unwrap();
            assert!(
                verifies(&files, list, &bytes, &stored.signature),
                "{list} version {} does not verify",
                record.volgnummer
            );
            if Some(record) == versions.last() {
                current.insert(list, parse_list(&bytes, list).unwrap().entries);
            }
        }
    }
    assert_eq!(integrity::inconsistencies(&current), []);
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
