//! The invariant of rule 4 under random interleavings, on both backends: whatever staff
//! submit, approve, reject, schedule or delay, and whenever the node publishes, the current
//! published versions of the four lists refer only to each other (checked over the published
//! bytes, parsed back).

use chrono::Duration;
use serde_json::{Value, json};

use stelselnode::clock::Clock;
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{ListKind, Reden, Role};
use stelselnode::mutations::Actor;

use super::support::TestDatabase;
use super::support::mutations::{
    actor, delete, gegevensdienst, gnl_upsert, parsed, whitelist_upsert, zorgaanbieder,
};
use super::support::node::{Node, node, published_lists_consistent};
use super::support::random::Random;

on_both_backends!(random_interleavings_never_publish_an_inconsistent_set);

/// Steps per seed, and the seeds: each run is reproducible from its seed.
const STEPS: usize = 60;
const SEEDS: [u64; 3] = [0x5eed_0001, 0x5eed_0002, 0x5eed_0003];

async fn keys(node: &Node, list: ListKind) -> Vec<String> {
    let state = node.db.storage.working_state(list).await.unwrap();
    state
        .entries
        .keys()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

async fn version(node: &Node, list: ListKind, key: &str) -> i64 {
    let state = node.db.storage.working_state(list).await.unwrap();
    state.version_of(key)
}

/// One random change request, built from the working state so that many pass the checks.
async fn random_change(node: &Node, random: &mut Random, step: usize) -> Option<Value> {
    let hosts = keys(node, ListKind::Whitelist).await;
    let ids = keys(node, ListKind::Gnl).await;
    Some(match random.below(8) {
        0 => whitelist_upsert(&format!("node{step}.voorbeeld.nl"), 0),
        1 => {
            let host = random.pick(&hosts)?;
            delete(
                "whitelist",
                host,
                version(node, ListKind::Whitelist, host).await,
            )
        }
        2 => gnl_upsert(&format!("{}", 100 + step), "Gegevensdienst", 0),
        3 => {
            let id = random.pick(&ids)?;
            delete("gnl", id, version(node, ListKind::Gnl, id).await)
        }
        4 => {
            let host = random.pick(&hosts)?;
            json!({
                "list": "ocl", "operation": "upsert",
                "base_version": version(node, ListKind::Ocl, host).await,
                "entry": { "hostname": host, "organisatienaam": "Een PGO" },
                "on_behalf_of": "Een PGO", "reference": "MEDMIJ-500"
            })
        }
        5 => {
            let clients = keys(node, ListKind::Ocl).await;
            let host = random.pick(&clients)?;
            delete("ocl", host, version(node, ListKind::Ocl, host).await)
        }
        6 => {
            let names = ["alfa", "bravo", "charlie", "delta", "echo", "foxtrot"];
            let naam = format!("ziekenhuis{}@medmij", random.pick(&names)?);
            let mut body = zorgaanbieder(
                &naam,
                json!([gegevensdienst(random.pick(&ids)?, random.pick(&hosts)?)]),
            );
            body["base_version"] = json!(version(node, ListKind::Zal, &naam).await);
            body
        }
        _ => {
            let zorgaanbieders = keys(node, ListKind::Zal).await;
            let naam = random.pick(&zorgaanbieders)?;
            delete("zal", naam, version(node, ListKind::Zal, naam).await)
        }
    })
}

async fn run(node: &Node, seed: u64) {
    let mut random = Random(seed);
    let (loket, beheer): (Actor, Actor) = (
        actor("loket-1", &[Role::Loket]),
        actor("beheer-1", &[Role::Beheer]),
    );
    let delayed = node.workflow_with_delay(600);
    for step in 0..STEPS {
        let workflow = match random.below(2) {
            0 => &*node.services.workflow,
            _ => &delayed,
        };
        match random.below(10) {
            // Time passes; the schedule publishes what is due.
            0 => {
                node.clock
                    .advance(Duration::minutes(random.below(20) as i64));
                workflow.publish_due().await;
            }
            // Staff publish some lists, sometimes confirming a mass change.
            1 => {
                let list = *random.pick(&ListKind::ALL).unwrap();
                let _ = workflow
                    .publish(&beheer, &[list], random.below(2) == 0)
                    .await;
            }
            _ => {
                let Some(mut body) = random_change(node, &mut random, step).await else {
                    continue;
                };
                if random.below(5) == 0 {
                    let from = node.clock.now() + Duration::minutes(random.below(30) as i64);
                    body["effective_from"] = json!(from.to_rfc3339());
                }
                let Ok(submitted) = workflow.submit(&loket, parsed(&body)).await else {
                    continue;
                };
                let _ = match random.below(4) {
                    0 => workflow
                        .reject(&beheer, &submitted, Reden::parse("niet volledig").unwrap())
                        .await
                        .map(|_| ()),
                    _ => workflow.approve(&beheer, &submitted).await.map(|_| ()),
                };
            }
        }
        published_lists_consistent(node)
            .await
            .unwrap_or_else(|e| panic!("seed {seed:#x}, step {step}: {e}"));
    }
}

async fn random_interleavings_never_publish_an_inconsistent_set(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    node.publish_all().await;
    let versions = || async {
        let mut count = 0;
        for list in ListKind::ALL {
            count += node.db.storage.versions(list).await.unwrap().len();
        }
        count
    };
    let before = versions().await;
    for seed in SEEDS {
        run(&node, seed).await;
    }
    // Not vacuous: the runs published a good many versions along the way.
    let published = versions().await - before;
    assert!(published >= 20, "only {published} versions were published");
}
