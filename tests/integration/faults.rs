//! I/O faults for real (issue 11, finding 2): the database stops taking writes while the node
//! runs — SQLite on a small tmpfs that fills up, PostgreSQL turned read-only with its
//! connections cut — and takes them again. During the fault writes answer 503 with
//! Retry-After and a JSON error and published lists are still served; afterwards the node
//! accepts writes and is ready without a restart, and the audit records of the refused
//! requests are written after all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use stelselnode::tls::NodeAccess;

use super::support::http_client::Response;
use super::support::mutations::whitelist_upsert;
use super::support::server::TestServer;
use super::support::{TestDatabase, postgres, sqlite_at};

/// The database stops taking writes and takes them again.
trait Fault {
    fn begin(&self);
    fn end(&self);
}

/// A tmpfs just for the SQLite file, unmounted when the test ends.
struct SmallDisk {
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount must exist; scripts/test runs as root");
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        Self {
            mount: dir.to_owned(),
        }
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }
}

impl Fault for SmallDisk {
    /// Fills the disk to the last byte.
    fn begin(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
    }

    fn end(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// A PostgreSQL database that turns read-only; its sessions are cut so that every new one
/// sees the setting.
struct ReadOnlyDatabase {
    url: String,
}

impl ReadOnlyDatabase {
    fn set(&self, read_only: bool) {
        let (server, name) = self.url.rsplit_once('/').unwrap();
        let value = if read_only { "on" } else { "off" };
        administer(
            server,
            &format!(
                "ALTER DATABASE {name} SET default_transaction_read_only = {value}; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
            ),
        );
    }
}

/// Runs `sql` with psql on the PostgreSQL server at `server` (its `postgres` database).
fn administer(server: &str, sql: &str) {
    let output = Command::new("psql")
        .args([
            &format!("{server}/postgres"),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ])
        .output()
        .expect("psql is installed with PostgreSQL");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Fault for ReadOnlyDatabase {
    fn begin(&self) {
        self.set(true);
    }
    fn end(&self) {
        self.set(false);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_on_a_full_disk_refuses_writes_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path());
    let db = sqlite_at(dir.path()).await;
    writes_fail_while_the_database_refuses_them(db, &disk).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_read_only_refuses_writes_and_recovers_without_a_restart() {
    let db = postgres().await;
    let fault = ReadOnlyDatabase {
        url: db.url.clone(),
    };
    writes_fail_while_the_database_refuses_them(db, &fault).await;
}

/// The database is lost for good while the node serves (issue 23): its SQLite file deleted,
/// or its PostgreSQL database dropped with every session.
fn lose(db: &TestDatabase) {
    match db.url.strip_prefix("sqlite://") {
        Some(file) => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{file}{suffix}"));
            }
        }
        None => {
            let (server, name) = db.url.rsplit_once('/').unwrap();
            administer(server, &format!("DROP DATABASE {name} WITH (FORCE)"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_file_deleted_under_load_serves_from_memory_and_refuses_writes() {
    lost_under_load(super::support::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_dropped_under_load_serves_from_memory_and_refuses_writes() {
    lost_under_load(postgres().await).await;
}

/// Consumers keep fetching while the database goes: every answer is the list as published;
/// writes answer 503, readiness names the database, nothing pretends to succeed.
async fn lost_under_load(db: TestDatabase) {
    let server = std::sync::Arc::new(TestServer::start(db, NodeAccess::Whitelist).await);
    server.publish_all().await;
    let published = server
        .node_get(Some(&server.pki.node), "/lists/zal", &[])
        .await
        .unwrap();
    assert_eq!(published.status, 200);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let fetchers: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !*stopped.borrow() {
                    let served = server.node_get(Some(&server.pki.node), "/lists/zal", &[]);
                    let served = served.await.unwrap();
                    answers.push((served.status, served.body));
                }
                answers
            })
        })
        .collect();
    lose(&server.db);
    for n in 1..=3 {
        let refused = submit(&server, n).await;
        assert_eq!(refused.status, 503, "{}", refused.text());
    }
    let publication = json!({"lists": ["whitelist"]});
    let failed = server
        .admin(
            &server.pki.beheer,
            "POST",
            "/publications",
            Some(&publication),
        )
        .await;
    assert_eq!(failed.status, 503, "{}", failed.text());
    let readiness = server.readiness().await;
    assert_eq!(readiness.status, 503);
    assert!(
        readiness.text().contains("the database cannot be used"),
        "{}",
        readiness.text()
    );
    stop.send(true).unwrap();
    let mut fetched = 0;
    for fetcher in fetchers {
        for (status, body) in fetcher.await.unwrap() {
            assert_eq!(status, 200);
            assert!(
                body == published.body,
                "the list served is the one published"
            );
            fetched += 1;
        }
    }
    assert!(fetched > 0);
    // Still nothing written after all that.
    assert_eq!(submit(&server, 4).await.status, 503);
}

/// Polls `condition` every 100 ms for at most 20 s.
async fn eventually<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the condition did not hold within 20 s");
}

/// Loket submits a new Whitelist host.
async fn submit(server: &TestServer, n: usize) -> Response {
    let body = whitelist_upsert(&format!("host{n}.voorbeeld.nl"), 0);
    server
        .admin(&server.pki.loket, "POST", "/mutations", Some(&body))
        .await
}

async fn writes_fail_while_the_database_refuses_them(db: TestDatabase, fault: &dyn Fault) {
    const REFUSED: usize = 5;
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    assert_eq!(submit(&server, 0).await.status, 201);

    fault.begin();
    for n in 1..=REFUSED {
        let refused = submit(&server, n).await;
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert!(refused.header("Retry-After").is_some());
        assert_eq!(refused.json()["error"], "Service Unavailable");
    }
    let served = server
        .node_get(Some(&pki.node), "/lists/zal", &[])
        .await
        .unwrap();
    assert_eq!(served.status, 200, "published lists are still served");
    // And observed: list freshness is scraped whatever the SLA figures can do.
    let scrape = server.metrics().await;
    assert!(scrape.contains("stelselnode_list_seconds_until_expiry{list=\"zal\"}"));
    assert!(scrape.contains("stelselnode_sla_figures_available "));
    // A publication cannot be stored either: the node is not ready until one is.
    let publication = json!({"lists": ["whitelist"]});
    let failed = server
        .admin(&pki.beheer, "POST", "/publications", Some(&publication))
        .await;
    assert_eq!(failed.status, 503, "{}", failed.text());
    assert!(!server.ready().await);

    fault.end();
    // Ready again without a restart: the node retries the failed publication by itself.
    eventually(|| async { server.ready().await }).await;
    // The first write after the fault may meet a connection the fault cut; the node
    // discards it, and the client's retry goes through.
    eventually(|| async { submit(&server, REFUSED + 1).await.status == 201 }).await;
    // The refused requests' audit records were kept and are written now.
    eventually(|| async {
        let failed = server
            .admin_get(
                &pki.beheer,
                "/audit?outcome=failed&action=POST%20/mutations",
            )
            .await
            .json();
        failed["records"].as_array().unwrap().len() >= REFUSED
    })
    .await;
    server.app.stop().await;
}
