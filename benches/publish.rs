//! Publication of the ZAL on SQLite (SPEC §12): snapshot, integrity check, render, re-check
//! of the bytes, digest, compression, signature, and the storing transaction, for 10 000 and
//! 50 000 Zorgaanbieders. Every iteration changes one entry first, so each version has a
//! new body to store (the worst case; a heartbeat reuses the stored body).
//! Targets: ≤ 0.5 s at 10 000, ≤ 2.5 s at 50 000.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

use stelselnode::clock::SystemClock;
use stelselnode::config::PublicationConfig;
use stelselnode::devpki::{DevCa, KeyAlgorithm, Purpose};
use stelselnode::domain::{AnyEntry, ListEntries, ListKind};
use stelselnode::domain::{AuditOutcome, AuditRecord, EntryChange};
use stelselnode::publication::{PublishOptions, Publisher, Settings};
use stelselnode::sample::{SampleSize, network};
use stelselnode::signing::SigningKey;
use stelselnode::storage::{Storage, connect};

fn publish(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("publish_zal_sqlite");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    for size in [10_000, 50_000] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let (publisher, storage) = runtime.block_on(async {
            let storage: Arc<dyn Storage> = connect(&url).await.unwrap();
            storage.migrate().await.unwrap();
            let net = network(SampleSize::realistic(size), Utc::now());
            let audit = AuditRecord {
                at: Utc::now(),
                actor_subject: "bench".into(),
                actor_fingerprint: None,
                role: None,
                action: "import".into(),
                object: None,
                on_behalf_of: None,
                outcome: AuditOutcome::Allowed,
                reason: None,
            };
            for list in [&net.whitelist, &net.gnl, &net.ocl, &net.zal] {
                storage.import_list(list, Utc::now(), &audit).await.unwrap();
            }
            let ca = DevCa::new("bench").unwrap();
            let issued = ca
                .issue(
                    &Purpose::Signing {
                        common_name: "bench".into(),
                    },
                    KeyAlgorithm::Rsa2048,
                )
                .unwrap();
            let key =
                SigningKey::from_der(issued.key_der.secret_pkcs8_der(), vec![issued.certificate])
                    .unwrap();
            let publisher = Publisher::new(
                storage.clone(),
                Arc::new(SystemClock),
                Settings::from(&PublicationConfig::default()),
                key,
            );
            (publisher, storage)
        });
        let options = PublishOptions {
            confirm_mass_change: true,
            published_by: "bench".into(),
        };
        let original = runtime
            .block_on(storage.working_state(ListKind::Zal))
            .unwrap();
        let ListEntries::Zal(zal) = &original.entries else {
            unreachable!()
        };
        let mut round = 0usize;
        group.bench_function(format!("{size}"), |b| {
            b.iter_batched(
                // Not timed: remove or restore one Zorgaanbieder, so the body changes.
                || {
                    round += 1;
                    let entry = &zal.as_slice()[(round / 2) % zal.len()];
                    let key = entry.naam().as_str();
                    runtime.block_on(async {
                        let version = storage
                            .working_state(ListKind::Zal)
                            .await
                            .unwrap()
                            .version_of(key);
                        let change = match round % 2 {
                            1 => EntryChange::delete(ListKind::Zal, key, version),
                            _ => {
                                EntryChange::upsert(AnyEntry::Zorgaanbieder(entry.clone()), version)
                            }
                        };
                        storage.apply_change(&change, Utc::now()).await.unwrap();
                    });
                },
                |()| {
                    runtime
                        .block_on(publisher.publish(ListKind::Zal, &options))
                        .unwrap()
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
