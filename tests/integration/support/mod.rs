//! The shared test support: real databases on both backends (this file), the independent
//! verifiers (xmllint, xmlsec1), a node without listeners (`node`), a node with its
//! listeners over real mutual TLS (`server`), a node as a process (`process`), the wire-level HTTPS client that sees TLS
//! alerts (`http_client`), and mutations as staff make them (`mutations`).

pub mod http_client;
pub mod mutations;
pub mod node;
pub mod patroni;
pub mod process;
pub mod promtool;
pub mod proxy;
pub mod random;
pub mod receivers;
pub mod server;
pub mod signer;
pub mod softhsm;
pub mod verifiers;
pub mod witness;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use stelselnode::domain::ListKind;
use stelselnode::storage::{self, Storage};

pub use verifiers::conformance_dir;

pub fn official_example(list: ListKind) -> PathBuf {
    let name = match list {
        ListKind::Zal => "MedMij_Zorgaanbiederslijst_example.xml",
        ListKind::Ocl => "MedMij_OAuthclientlist_example.xml",
        ListKind::Gnl => "MedMij_Gegevensdienstnamenlijst_example.xml",
        ListKind::Whitelist => "MedMij_Whitelist_example.xml",
    };
    conformance_dir()
        .join("examples/afsprakenset-1.1")
        .join(name)
}

/// A database for one test: a fresh SQLite file or a fresh PostgreSQL database, migrated.
pub struct TestDatabase {
    pub storage: Arc<dyn Storage>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A database the test opened itself (a restored copy), kept as long as the test runs.
    pub fn at(storage: Arc<dyn Storage>, url: String) -> Self {
        Self {
            storage,
            url,
            _dir: None,
        }
    }
}

pub async fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut db = sqlite_at(dir.path()).await;
    db._dir = Some(dir);
    db
}

/// A fresh SQLite database in `dir`, which the caller keeps.
pub async fn sqlite_at(dir: &std::path::Path) -> TestDatabase {
    let url = format!("sqlite://{}", dir.join("stelselnode.db").display());
    let storage = storage::connect(&url).await.expect("open SQLite");
    storage.migrate().await.expect("migrate SQLite");
    TestDatabase {
        storage,
        url,
        _dir: None,
    }
}

/// Runs one SQL statement on the database behind the node's back (to set up what an older
/// version left, or to show what the database itself refuses).
pub async fn execute_sql(db: &TestDatabase, sql: &'static str) -> Result<(), sqlx::Error> {
    match db.url.starts_with("sqlite") {
        true => {
            let pool = sqlx::SqlitePool::connect(&db.url).await?;
            sqlx::query(sql).execute(&pool).await.map(|_| ())
        }
        false => {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            sqlx::query(sql).execute(&pool).await.map(|_| ())
        }
    }
}

/// Gives every stored body another's bytes, behind the node's back (a database damaged or
/// edited by hand).
pub async fn swap_stored_bodies(db: &TestDatabase) {
    execute_sql(
        db,
        "UPDATE version_bodies SET compressed = (SELECT b.compressed FROM version_bodies b \
         WHERE b.sha256 <> version_bodies.sha256 LIMIT 1)",
    )
    .await
    .expect("the bodies are swapped");
}

/// The PostgreSQL server the test command started (or the one given). Never optional: a
/// missing server fails the test rather than skipping it.
fn postgres_server_url() -> String {
    std::env::var("STELSELNODE_TEST_DATABASE_URL").expect(
        "STELSELNODE_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts \
         a throwaway PostgreSQL, or point it at a server where databases may be created",
    )
}

/// A new, empty database on the test server, for one test.
pub async fn postgres_url() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server = postgres_server_url();
    let name = format!(
        "stelselnode_test_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(&server)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    let (base, _) = server
        .rsplit_once('/')
        .expect("a database URL ends in /DBNAME");
    format!("{base}/{name}")
}

pub async fn postgres() -> TestDatabase {
    let url = postgres_url().await;
    let storage = storage::connect(&url).await.expect("open PostgreSQL");
    storage.migrate().await.expect("migrate PostgreSQL");
    TestDatabase {
        storage,
        url,
        _dir: None,
    }
}

/// A free port on the loopback address (bound and released: the node binds it next).
///
/// Ports come from below Linux's ephemeral range (32768 and up), so no outgoing connection
/// of another test can be given the port between this check and a node's (re)start.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    // Each test process starts elsewhere in the range, so parallel runs rarely meet.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % COUNT;
    for _ in 0..COUNT {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        let port = u16::try_from(port).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + COUNT);
}

/// A new, empty database on the same backend as `db` (a restore's target).
/// `stelselnode verify` of the `list.xml`, `list.sig.xml` and `ca.pem` in `dir`, run there.
pub fn verify_command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stelselnode"));
    command.current_dir(dir).args([
        "verify",
        "--list-file",
        "list.xml",
        "--signature",
        "list.sig.xml",
        "--ca",
        "ca.pem",
    ]);
    command
}

pub async fn empty_like(db: &TestDatabase) -> TestDatabase {
    match db.url.starts_with("sqlite") {
        true => sqlite().await,
        false => postgres().await,
    }
}

/// Validates `document` against the official XSD of `list` with xmllint.
pub fn xmllint_validate(document: &[u8], list: ListKind) -> Result<(), String> {
    verifiers::xmllint_validate(document, list.schema_file())
}
