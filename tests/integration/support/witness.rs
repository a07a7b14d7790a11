//! A real C2SP tlog-witness: `siglog`'s `witness` binary from crates.io (installed by
//! scripts/test; `STELSELNODE_TEST_WITNESS` names it), on its own SQLite database and port,
//! witnessing one log. Killed for real, started again on the same database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::http_client::plain_get;

pub struct SiglogWitness {
    /// Its submission prefix, for `transparency.witnesses`.
    pub url: String,
    /// Its verifier key (`<name>+<id>+<key>`, an Ed25519 note key: siglog cosigns with a
    /// plain note signature).
    pub verifier_key: String,
    port: u16,
    database: PathBuf,
    private_key: String,
    log: String,
    child: Option<Child>,
}

impl SiglogWitness {
    /// A witness named `name` of the log `origin` whose checkpoints `log_verifier` verifies,
    /// its database in `dir`; started and answering.
    pub async fn start(dir: &Path, name: &str, origin: &str, log_verifier: &str) -> Self {
        let (private_key, verifier_key) = stelselnode::transparency::generate_note_key(name);
        let port = free_port();
        let mut witness = Self {
            url: format!("http://127.0.0.1:{port}/"),
            verifier_key,
            port,
            database: dir.join(format!("{name}.db")),
            private_key,
            log: format!("{origin}={}", log_verifier.trim()),
            child: None,
        };
        witness.run().await;
        witness
    }

    async fn run(&mut self) {
        let binary = std::env::var("STELSELNODE_TEST_WITNESS").unwrap_or_else(|_| "witness".into());
        let child = Command::new(&binary)
            .arg("--database-url")
            .arg(format!("sqlite:{}?mode=rwc", self.database.display()))
            .arg("--private-key")
            .arg(&self.private_key)
            .arg("--log")
            .arg(&self.log)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e} (scripts/test installs siglog's witness)"));
        self.child = Some(child);
        let started = Instant::now();
        let address = ([127, 0, 0, 1], self.port).into();
        loop {
            let answering = tokio::net::TcpStream::connect(address).await.is_ok()
                && plain_get(address, "/health").await.status == 200;
            if answering {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the witness did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts it again on the same database, key and port.
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await;
    }

    /// The node configuration naming it.
    pub fn config(&self) -> stelselnode::config::WitnessConfig {
        stelselnode::config::WitnessConfig {
            url: self.url.clone(),
            verifier_key: self.verifier_key.clone(),
        }
    }
}

impl Drop for SiglogWitness {
    fn drop(&mut self) {
        self.kill();
    }
}
