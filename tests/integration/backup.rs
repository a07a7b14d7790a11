//! Backups between bundles (issue 23): `stelselnode backup` copies a SQLite database while
//! the node writes — the copy opens, passes SQLite's integrity check and holds every mutation
//! acknowledged before the backup began — and a restored backup (SQLite's, or a PostgreSQL
//! `pg_basebackup`) takes consumers' copies of newer versions and continues past the
//! Volgnummers it may have missed, so no consumer sees a rollback.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use chrono::Duration;
use stelselnode::archive::{BundleTrust, ConsumerCopy, RestoreRequest, Restorer};
use stelselnode::clock::Clock;
use stelselnode::consumer::ConsumerState;
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{ListKind, Role};
use stelselnode::mutations::Actor;
use stelselnode::services::Services;
use stelselnode::storage::{MutationQuery, StorageError};

use super::support::mutations::{actor, parsed, whitelist_upsert};
use super::support::node::{Node, accept, consumer_copy, current_whitelist, node};
use super::support::{TestDatabase, free_port, postgres, sqlite_at};

fn loket() -> Actor {
    actor("loket-1", &[Role::Loket])
}

async fn submitted_ids(storage: &dyn stelselnode::storage::Storage) -> BTreeSet<i64> {
    let all = MutationQuery {
        limit: 100_000,
        ..Default::default()
    };
    storage
        .mutations(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_load_holds_every_acknowledged_mutation_and_passes_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(node(sqlite_at(dir.path()).await, KeyAlgorithm::EcdsaP256).await);
    node.publish_all().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let node = node.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !*stopped.borrow() {
                    let host = format!("backup{w}-{n}.medmij.nl");
                    node.services
                        .workflow
                        .submit(&loket(), parsed(&whitelist_upsert(&host, 0)))
                        .await
                        .unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    // Wait until the writers are well under way, then back up while they go on.
    let storage = node.db.storage.clone();
    while submitted_ids(storage.as_ref()).await.len() < 50 {
        tokio::task::yield_now().await;
    }
    let acknowledged = submitted_ids(storage.as_ref()).await;
    let out = dir.path().join("backup.db");
    let size = storage.backup(&out).await.unwrap();
    stop.send(true).unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);

    // The copy opens on its own, passes SQLite's own check, and holds every mutation
    // acknowledged before the backup began.
    let copy = stelselnode::storage::connect(&format!("sqlite://{}", out.display()))
        .await
        .unwrap();
    let in_copy = submitted_ids(copy.as_ref()).await;
    assert!(
        in_copy.is_superset(&acknowledged),
        "{} of {}",
        in_copy.len(),
        acknowledged.len()
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", out.display()))
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    // No partial file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_is_backed_up_with_its_own_tools() {
    let db = postgres().await;
    let out = tempfile::tempdir().unwrap();
    let refused = db
        .storage
        .backup(&out.path().join("x.db"))
        .await
        .unwrap_err();
    assert!(matches!(refused, StorageError::Unsupported(_)), "{refused}");
}

/// After the backup: a version a consumer copied, and one that will be lost with the
/// database, which a consumer accepted.
struct AfterBackup {
    copy: ConsumerCopy,
    consumer: ConsumerState,
    lost: i64,
    _files: tempfile::TempDir,
}

async fn publish_after_backup(node: &Node) -> AfterBackup {
    let files = tempfile::tempdir().unwrap();
    node.clock.set(node.clock.now() + Duration::hours(1));
    let copied = node.publish(ListKind::Whitelist).await;
    let copy = consumer_copy(
        node,
        ListKind::Whitelist,
        copied.volgnummer,
        files.path(),
        "wl",
    )
    .await;
    node.clock.set(node.clock.now() + Duration::hours(1));
    let lost = node.publish(ListKind::Whitelist).await;
    let mut consumer = ConsumerState::default();
    accept(node, &mut consumer, lost.volgnummer, node)
        .await
        .unwrap();
    AfterBackup {
        copy,
        consumer,
        lost: lost.volgnummer.get(),
        _files: files,
    }
}

/// Puts `restored` (a database made from a backup) in place of `node`'s, adopts the copy,
/// and checks that the consumer that holds the lost version accepts what the node publishes.
async fn adopt_into(node: &Node, restored: TestDatabase, after: AfterBackup) {
    let before = restored
        .storage
        .current_version(ListKind::Whitelist)
        .await
        .unwrap()
        .unwrap();
    assert!(
        before.volgnummer.get() < after.lost - 1,
        "the backup predates both"
    );
    let restorer = Restorer {
        storage: restored.storage.clone(),
        trust: BundleTrust::new(vec![node.signer.ca.certificate().clone()]),
    };
    let request = RestoreRequest {
        bundles: Vec::new(),
        copies: vec![after.copy.clone()],
        margin: 100,
        republish: true,
    };
    let report = restorer.adopt(&request, node.clock.now()).await.unwrap();
    let whitelist = &report.lists[&ListKind::Whitelist];
    assert_eq!(whitelist.last_recovered, after.lost - 1);
    assert_eq!(whitelist.adopted, 1);
    let services = Services::build(
        &node.config,
        restored.storage.clone(),
        Arc::new(node.clock.clone()),
    )
    .unwrap();
    let restored = node.on(services, restored);
    restored
        .services
        .publisher
        .publish_restored()
        .await
        .unwrap();
    let next = current_whitelist(&restored).await;
    assert_eq!(next.volgnummer.get(), whitelist.next_volgnummer);
    assert!(next.volgnummer.get() > after.lost);
    let mut consumer = after.consumer.clone();
    accept(node, &mut consumer, next.volgnummer, &restored)
        .await
        .unwrap();
    let check = restored.services.archive_check.run().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_sqlite_backup_adopts_newer_versions_from_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(sqlite_at(dir.path()).await, KeyAlgorithm::EcdsaP256).await;
    node.publish_all().await;
    let backup = dir.path().join("backup.db");
    node.db.storage.backup(&backup).await.unwrap();
    let after = publish_after_backup(&node).await;
    // The database is lost; the backup is put in its place on a new machine.
    let new_machine = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, new_machine.path().join("stelselnode.db")).unwrap();
    let restored = sqlite_at(new_machine.path()).await;
    adopt_into(&node, restored, after).await;
}

/// A PostgreSQL cluster of the test's own, run as `postgres` (the test cluster's user) on a
/// port of its own: made with initdb, or copied from a running one with `pg_basebackup`.
struct Cluster {
    dir: tempfile::TempDir,
    pg_bin: String,
    /// postgres://postgres@127.0.0.1:PORT
    url: String,
}

impl Cluster {
    fn as_postgres(&self, program: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{}/{program}", self.pg_bin),
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// A directory for a cluster, owned by `postgres`.
    fn unstarted() -> Self {
        let pg_bin = std::env::var("STELSELNODE_TEST_PG_BIN")
            .expect("STELSELNODE_TEST_PG_BIN: scripts/test names the PostgreSQL binaries");
        let dir = tempfile::tempdir().unwrap();
        let owned = Command::new("chown")
            .args(["postgres:", &dir.path().display().to_string()])
            .status()
            .unwrap();
        assert!(owned.success());
        Self {
            dir,
            pg_bin,
            url: String::new(),
        }
    }

    fn start(mut self) -> Self {
        let port = free_port();
        let log = self.dir.path().join("log").display().to_string();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            self.dir.path().display()
        );
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        self.url = format!("postgres://postgres@127.0.0.1:{port}");
        self
    }

    fn new() -> Self {
        let cluster = Self::unstarted();
        let data = cluster.data();
        cluster.as_postgres(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        cluster.start()
    }

    /// A copy of this running cluster, made with `pg_basebackup` (WAL streamed along), started.
    fn base_backup(&self) -> Self {
        let copy = Self::unstarted();
        let (host, port) = self
            .url
            .trim_start_matches("postgres://postgres@")
            .split_once(':')
            .unwrap();
        let data = copy.data();
        copy.as_postgres(
            "pg_basebackup",
            &[
                "-h",
                host,
                "-p",
                port,
                "-U",
                "postgres",
                "-D",
                &data,
                "-X",
                "stream",
                "--checkpoint=fast",
            ],
        );
        copy.start()
    }

    async fn database(&self, name: &str) -> TestDatabase {
        let admin = sqlx::PgPool::connect(&format!("{}/postgres", self.url))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", self.url);
        let storage = stelselnode::storage::connect(&url).await.unwrap();
        storage.migrate().await.unwrap();
        TestDatabase::at(storage, url)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{}/pg_ctl", self.pg_bin)])
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pg_basebackup_copy_restores_the_node_and_adopts_newer_versions() {
    let cluster = Cluster::new();
    let node = node(
        cluster.database("stelselnode").await,
        KeyAlgorithm::EcdsaP256,
    )
    .await;
    node.publish_all().await;
    let submitted = node
        .services
        .workflow
        .submit(
            &loket(),
            parsed(&whitelist_upsert("basebackup.medmij.nl", 0)),
        )
        .await
        .unwrap();
    let copy = cluster.base_backup();
    let after = publish_after_backup(&node).await;
    drop(cluster);
    // The original cluster is lost; the copy runs on a new machine.
    let url = format!("{}/stelselnode", copy.url);
    let storage = stelselnode::storage::connect(&url).await.unwrap();
    storage.migrate().await.unwrap();
    assert_eq!(submitted_ids(storage.as_ref()).await, [submitted.id].into());
    adopt_into(&node, TestDatabase::at(storage, url), after).await;
}
