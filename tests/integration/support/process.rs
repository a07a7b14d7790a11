//! A node as a process: the `stelselnode` binary with its own directory of dev certificates
//! and configuration, on a database the test chose, started with `serve` and killed for
//! real (crashes, lease takeover, the failover drill).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stelselnode::admin_client::AdminClient;
use stelselnode::domain::ListKind;

use super::http_client::plain_get;
use super::{free_port, official_example};

/// A node directory with certificates and configuration, the official example lists
/// imported and published, on `database_url`.
pub struct NodeFiles {
    pub dir: PathBuf,
    pub database_url: String,
    /// Node, admin and ops.
    pub ports: [u16; 3],
    /// Settings for every command, as `STELSELNODE_…` variables.
    env: Vec<(String, String)>,
}

impl NodeFiles {
    pub fn prepare(dir: &Path, database_url: String) -> Self {
        stelselnode::dev::prepare(dir).unwrap();
        let files = Self {
            dir: dir.to_owned(),
            database_url,
            ports: [free_port(), free_port(), free_port()],
            env: Vec::new(),
        };
        files.run(&["migrate"]);
        for list in ListKind::ALL {
            let file = official_example(list);
            files.run(&["import", "--list", list.as_str(), file.to_str().unwrap()]);
        }
        files.run(&["publish", "--all", "--confirm-mass-change"]);
        files
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stelselnode"));
        let config = self.dir.join("config.toml");
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env("STELSELNODE_DATABASE_URL", &self.database_url)
            .env("STELSELNODE_LOG", "warn")
            .env(
                "STELSELNODE_SERVER_NODE_LISTEN",
                format!("127.0.0.1:{}", self.ports[0]),
            )
            .env(
                "STELSELNODE_SERVER_ADMIN_LISTEN",
                format!("127.0.0.1:{}", self.ports[1]),
            )
            .env(
                "STELSELNODE_SERVER_OPS_LISTEN",
                format!("127.0.0.1:{}", self.ports[2]),
            )
            .envs(self.env.iter().cloned());
        command
    }

    pub fn run(&self, args: &[&str]) {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Every command of this node gets `setting` (e.g. `SERVER_LEASE_SECONDS`).
    pub fn with_setting(mut self, setting: &str, value: &str) -> Self {
        self.env
            .push((format!("STELSELNODE_{setting}"), value.to_owned()));
        self
    }

    /// A second replica: the same files, database and settings, its own ports.
    pub fn replica(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            database_url: self.database_url.clone(),
            ports: [free_port(), free_port(), free_port()],
            env: self.env.clone(),
        }
    }

    pub fn ops(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.ports[2]))
    }

    /// Starts `serve` and waits until it is ready.
    pub async fn serve(&self) -> Child {
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ops = self.ops();
        for _ in 0..300 {
            if std::net::TcpStream::connect(ops).is_ok()
                && plain_get(ops, "/readyz").await.status == 200
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("the node did not become ready");
    }

    pub fn client(&self, who: &str) -> AdminClient {
        let file = |name: String| self.dir.join(name);
        AdminClient::new(
            &format!("https://localhost:{}", self.ports[1]),
            &file("ca.pem".into()),
            &file(format!("{who}.pem")),
            &file(format!("{who}.key")),
        )
        .unwrap()
    }
}
