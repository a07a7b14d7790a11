//! A node as a process: the `stelselnode` binary with its own directory of dev certificates
//! and configuration, on a database the test chose, started with `serve` and killed for
//! real (crashes, lease takeover, the failover drill); staff working on it meanwhile, and the
//! checks afterwards that nothing they were answered was lost.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use stelselnode::admin_client::{AdminClient, StaffRequest};
use stelselnode::domain::{ListEntries, ListKind, MutationStatus};
use stelselnode::integrity;
use stelselnode::publication::assemble;
use stelselnode::storage::{self, Storage};
use stelselnode::xml::parse_list;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use stelselnode::leases::Singleton;

use super::http_client::{connector, plain_get};
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

    /// Every command of this node runs with the environment variable `name` set.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
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
        let log = self.dir.join(format!("serve-{}.log", self.ports[2]));
        let mut child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let ops = self.ops();
        let mut last_answer = String::from("the ops listener never accepted a connection");
        for _ in 0..600 {
            if std::net::TcpStream::connect(ops).is_ok() {
                let answer = plain_get(ops, "/readyz").await;
                if answer.status == 200 {
                    return child;
                }
                last_answer = String::from_utf8_lossy(&answer.body).into_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        panic!(
            "the node did not become ready within 30 s; /readyz last said {last_answer}\n\
             its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Who holds each singleton lease, as this replica's ops listener says, and this
    /// replica's own name.
    pub async fn lease_holders(&self) -> (String, Vec<(String, String)>) {
        let answer = plain_get(self.ops(), "/leases").await;
        assert_eq!(answer.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        let holders = body["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let field = |name: &str| l[name].as_str().unwrap().to_owned();
                (field("name"), field("holder"))
            })
            .collect();
        (body["this_replica"].as_str().unwrap().to_owned(), holders)
    }

    /// Waits until this replica holds every singleton lease; returns how long that took.
    pub async fn holds_every_lease(&self) -> Duration {
        let started = Instant::now();
        loop {
            let (me, holders) = self.lease_holders().await;
            if holders.len() == Singleton::ALL.len() && holders.iter().all(|(_, h)| *h == me) {
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{holders:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client of the node listener with the dev node certificate (whitelisted).
    pub fn node_connector(&self) -> tokio_rustls::TlsConnector {
        let ca = CertificateDer::from_pem_file(self.dir.join("ca.pem")).unwrap();
        connector(&ca, Some(&issued(&self.dir, "node")))
    }

    /// Puts the dev node certificate's host on the Whitelist (loket submits, beheer
    /// approves) and waits until this replica serves it a list.
    pub async fn whitelist_dev_node(&self) {
        let body = json!({
            "list": "whitelist", "operation": "upsert", "base_version": 0,
            "entry": { "hostname": stelselnode::dev::DEV_NODE_HOST },
            "on_behalf_of": "Een PGO", "reference": "DRILL-1"
        });
        let created = self
            .client("loket")
            .send(&StaffRequest::Submit(body))
            .await
            .unwrap();
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_i64().unwrap();
        let approved = self
            .client("beheer")
            .send(&StaffRequest::Approve(id))
            .await
            .unwrap();
        assert_eq!(approved.status, 200, "{}", approved.body);
        self.until_dev_node_served().await;
    }

    /// Waits until this replica serves the dev node certificate (on the Whitelist).
    pub async fn until_dev_node_served(&self) {
        let connector = self.node_connector();
        let started = Instant::now();
        while super::http_client::request(
            &connector,
            self.node(),
            "GET",
            "/lists/whitelist",
            &[],
            b"",
        )
        .await
        .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node is not served"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn node(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.ports[0]))
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

/// What the staff saw answered: mutations created, and approvals answered 200 (with the
/// status the answer gave).
#[derive(Default)]
pub struct Acknowledged {
    pub submitted: Vec<i64>,
    pub approved: Vec<(i64, MutationStatus)>,
    /// When each acknowledgement (submission or approval) arrived.
    pub at: Vec<Instant>,
}

impl Acknowledged {
    pub fn extend(&mut self, more: Acknowledged) {
        self.submitted.extend(more.submitted);
        self.approved.extend(more.approved);
        self.at.extend(more.at);
    }

    /// The longest time without an acknowledgement, from the first to the last.
    pub fn longest_gap(&self) -> Duration {
        let mut at = self.at.clone();
        at.sort();
        at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }
}

/// Submits and approves new Whitelist hosts (named after `label`) until `stop`; a request
/// a crash or failover cut off simply gets no acknowledgement.
pub async fn staff_at_work(files: &NodeFiles, label: &str, stop: Arc<AtomicBool>) -> Acknowledged {
    let (loket, beheer) = (files.client("loket"), files.client("beheer"));
    let mut acknowledged = Acknowledged::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = json!({
            "list": "whitelist", "operation": "upsert", "base_version": 0,
            "entry": { "hostname": format!("{label}n{n}.crash.voorbeeld.nl") },
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
        acknowledged.at.push(Instant::now());
        if let Ok(approved) = beheer.send(&StaffRequest::Approve(id)).await
            && approved.status == 200
        {
            let status = serde_json::from_value(approved.body["status"].clone()).unwrap();
            acknowledged.approved.push((id, status));
            acknowledged.at.push(Instant::now());
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

/// Every mutation acknowledged is stored in the state its answer said, every list's
/// Volgnummers run without a gap or duplicate, every stored version verifies with
/// `stelselnode verify`, and the current published set is consistent.
pub async fn nothing_acknowledged_is_lost(files: &NodeFiles, acknowledged: &Acknowledged) {
    let storage: Arc<dyn Storage> = storage::connect(&files.database_url).await.unwrap();
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
                verifies(files, list, &bytes, &stored.signature),
                "{list} version {} does not verify",
                record.volgnummer
            );
            if Some(record) == versions.last() {
                current.insert(list, parse_list(&bytes, list).unwrap().entries);
            }
        }
    }
    assert_eq!(integrity::inconsistencies(&current), []);
}

/// The certificate and key `stelselnode dev` wrote for `name` in `dir`.
pub fn issued(dir: &Path, name: &str) -> stelselnode::devpki::Issued {
    let certificate_pem = std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap();
    let key_pem = std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap();
    stelselnode::devpki::Issued {
        certificate: CertificateDer::from_pem_slice(certificate_pem.as_bytes()).unwrap(),
        key_der: PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
        certificate_pem,
        key_pem,
    }
}
