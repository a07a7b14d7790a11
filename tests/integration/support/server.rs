//! A node in-process with its three listeners over real mutual TLS, certificates made here
//! (`Pki`), the official example lists imported, and typed request helpers.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use stelselnode::clock::ManualClock;
use stelselnode::config::{AdminIdentity, Config};
use stelselnode::devpki::{DevCa, Issued, KeyAlgorithm, Purpose};
use stelselnode::domain::{ListKind, Role, Volgnummer};
use stelselnode::import::import_document;
use stelselnode::publication::{PublishOptions, assemble};
use stelselnode::server::Application;
use stelselnode::services::Services;
use stelselnode::tls::NodeAccess;

use super::http_client::{Response, connector, plain_get, request};
pub use super::node::LOG_ORIGIN;
use super::node::configure_log_key;
use super::{TestDatabase, official_example};

/// A whitelisted host of the official example Whitelist.
pub const NODE_HOST: &str = "medmij.deenigeechtepgo.nl";

pub struct Pki {
    pub ca: DevCa,
    pub server: Issued,
    pub node: Issued,
    pub stranger: Issued,
    pub beheer: Issued,
    /// A second beheer identity: four eyes.
    pub beheer2: Issued,
    pub loket: Issued,
    pub signer: Issued,
    pub foreign_node: Issued,
}

fn client(ca: &DevCa, name: &str) -> Issued {
    ca.issue(
        &Purpose::Client {
            common_name: name.into(),
            dns_names: vec![],
        },
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap()
}

impl Pki {
    pub fn new() -> Self {
        let ca = DevCa::new("Stelselnode Test CA").unwrap();
        let foreign = DevCa::new("Some Other CA").unwrap();
        Self {
            server: ca
                .issue(
                    &Purpose::Server(vec!["localhost".into()]),
                    KeyAlgorithm::EcdsaP256,
                )
                .unwrap(),
            node: ca
                .issue(
                    &Purpose::Client {
                        common_name: "PGO De Enige Echte".into(),
                        dns_names: vec![NODE_HOST.into()],
                    },
                    KeyAlgorithm::EcdsaP256,
                )
                .unwrap(),
            stranger: client(&ca, "stranger.example.nl"),
            beheer: client(&ca, "beheer-1"),
            beheer2: client(&ca, "beheer-2"),
            loket: client(&ca, "loket-1"),
            signer: ca
                .issue(
                    &Purpose::Signing {
                        common_name: "stelselnode signer".into(),
                    },
                    KeyAlgorithm::Rsa2048,
                )
                .unwrap(),
            foreign_node: client(&foreign, NODE_HOST),
            ca,
        }
    }
}

async fn build(config: &Config, db: &TestDatabase, clock: &ManualClock) -> Application {
    let services = Services::build(config, db.storage.clone(), Arc::new(clock.clone())).unwrap();
    Application::build(services).await.unwrap()
}

pub struct TestServer {
    pub app: Application,
    pub pki: Pki,
    pub db: TestDatabase,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestServer {
    /// A node on ports chosen by the OS, with the official example lists imported and
    /// nothing published yet.
    pub async fn start(db: TestDatabase, access: NodeAccess) -> Self {
        Self::start_with(db, access, |_, _, _| {}).await
    }

    /// The same, with the configuration changed by `configure` (given the PKI and a
    /// directory for files) before the node starts.
    pub async fn start_with(
        db: TestDatabase,
        access: NodeAccess,
        configure: impl FnOnce(&mut Config, &Pki, &std::path::Path),
    ) -> Self {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, content: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            path.display().to_string()
        };
        let mut config = Config::default();
        config.database.url = db.url.clone();
        config.server.node_listen = "127.0.0.1:0".into();
        config.server.admin_listen = "127.0.0.1:0".into();
        config.server.ops_listen = "127.0.0.1:0".into();
        config.server.certificate_chain_file = write("server.pem", &pki.server.certificate_pem);
        config.server.key_file = write("server.key", &pki.server.key_pem);
        config.server.client_ca_file = write("ca.pem", &pki.ca.certificate_pem());
        config.server.node_access = access;
        config.server.workers = 1;
        config.signing.key_file = write("signer.key", &pki.signer.key_pem);
        config.signing.certificate_chain_file = write("signer.pem", &pki.signer.certificate_pem);
        configure_log_key(&mut config, write);
        config.admin.identities = vec![
            AdminIdentity {
                common_name: Some("beheer-1".into()),
                sha256_fingerprint: None,
                roles: vec![Role::Beheer],
            },
            AdminIdentity {
                common_name: Some("beheer-2".into()),
                sha256_fingerprint: None,
                roles: vec![Role::Beheer],
            },
            AdminIdentity {
                common_name: Some("loket-1".into()),
                sha256_fingerprint: None,
                roles: vec![Role::Loket],
            },
        ];
        configure(&mut config, &pki, dir.path());
        for list in ListKind::ALL {
            let bytes = std::fs::read(official_example(list)).unwrap();
            import_document(db.storage.as_ref(), list, &bytes, "cli:test", Utc::now())
                .await
                .unwrap();
        }
        let clock = ManualClock::new(Utc::now());
        let app = build(&config, &db, &clock).await;
        Self {
            app,
            pki,
            db,
            clock,
            dir,
            config,
        }
    }

    /// The transparency log's verifier key (`<name>+<id>+<base64 key>`), for consumers.
    pub fn log_verifier(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.vkey")).unwrap()
    }

    /// Stops the node and starts it again on the same database, configuration and clock
    /// (on new ports): what a restart keeps, it kept in the database.
    pub async fn restart(self) -> Self {
        self.restart_after(async |_| {}).await
    }

    /// The same, with the configuration changed by `configure` first.
    pub async fn restart_with(mut self, configure: impl FnOnce(&mut Config)) -> Self {
        configure(&mut self.config);
        self.restart_after(async |_| {}).await
    }

    /// The same, with `between` done to the database while the node is stopped.
    pub async fn restart_after(self, between: impl AsyncFnOnce(&TestDatabase)) -> Self {
        self.app.stop().await;
        between(&self.db).await;
        let app = build(&self.config, &self.db, &self.clock).await;
        app.refresh().await.unwrap();
        Self { app, ..self }
    }

    /// A second replica: another node process on the same database and configuration (new
    /// ports), as a load balancer would have beside this one.
    pub async fn replica(&self) -> Application {
        build(&self.config, &self.db, &self.clock).await
    }

    /// Waits until every current list is served in every content coding (they are made
    /// after a version is first served).
    pub async fn until_every_coding_is_made(&self) {
        let started = std::time::Instant::now();
        while !ListKind::ALL.into_iter().all(|list| {
            self.app
                .state()
                .served
                .current(list)
                .is_none_or(|served| served.every_coding_made())
        }) {
            assert!(started.elapsed() < std::time::Duration::from_secs(60));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// `/metrics` on the ops listener.
    pub async fn metrics(&self) -> String {
        let response = plain_get(self.app.ops_address(), "/metrics").await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.text()
    }

    pub async fn publish(&self, list: ListKind) -> stelselnode::domain::VersionRecord {
        let options = PublishOptions {
            confirm_mass_change: true,
            published_by: "test".into(),
        };
        let record = self
            .app
            .state()
            .services
            .publisher
            .publish(list, &options)
            .await
            .unwrap();
        self.app.refresh().await.unwrap();
        self.until_the_log_caught_up().await;
        record
    }

    /// The node's transparency log holds every stored leaf (it catches up after each
    /// publication on a task of its own; this waits for that task and reads what is left).
    pub async fn until_the_log_caught_up(&self) {
        let services = &self.app.state().services;
        services
            .transparency
            .catch_up(services.storage.as_ref())
            .await
            .unwrap();
    }

    /// The list's newest published version.
    pub async fn current(&self, list: ListKind) -> stelselnode::domain::VersionRecord {
        self.db
            .storage
            .current_version(list)
            .await
            .unwrap()
            .expect("a published version")
    }

    pub async fn publish_all(&self) {
        for list in [
            ListKind::Whitelist,
            ListKind::Gnl,
            ListKind::Ocl,
            ListKind::Zal,
        ] {
            self.publish(list).await;
        }
    }

    pub async fn node_get(
        &self,
        who: Option<&Issued>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        request(
            &connector(self.pki.ca.certificate(), who),
            self.app.node_address(),
            "GET",
            path,
            headers,
            b"",
        )
        .await
    }

    pub async fn admin_get(&self, who: &Issued, path: &str) -> Response {
        self.admin(who, "GET", path, None).await
    }

    /// A request on the admin listener, with a JSON body when given.
    pub async fn admin(
        &self,
        who: &Issued,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = match body.is_empty() {
            true => &[],
            false => &[("Content-Type", "application/json")],
        };
        request(
            &connector(self.pki.ca.certificate(), Some(who)),
            self.app.admin_address(),
            method,
            path,
            headers,
            body.as_bytes(),
        )
        .await
        .unwrap()
    }

    /// Whether `/readyz` on the ops listener says ready.
    pub async fn ready(&self) -> bool {
        self.readiness().await.status == 200
    }

    /// `/readyz`, with the problems it names.
    pub async fn readiness(&self) -> Response {
        plain_get(self.app.ops_address(), "/readyz").await
    }

    pub async fn stored_bytes(&self, list: ListKind, n: Volgnummer) -> Vec<u8> {
        assemble(&self.db.storage.version(list, n).await.unwrap().unwrap()).unwrap()
    }
}

/// A POST on the admin listener: the status and the JSON answer.
pub async fn post(server: &TestServer, who: &Issued, path: &str, body: &Value) -> (u16, Value) {
    let response = server.admin(who, "POST", path, Some(body)).await;
    let json = match response.body.is_empty() {
        true => Value::Null,
        false => response.json(),
    };
    (response.status, json)
}

/// Submits a mutation; it must be accepted.
pub async fn submit(server: &TestServer, who: &Issued, body: &Value) -> i64 {
    let (status, created) = post(server, who, "/mutations", body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_i64().unwrap()
}

pub async fn approve(server: &TestServer, who: &Issued, id: i64) -> (u16, Value) {
    post(server, who, &format!("/mutations/{id}/approve"), &json!({})).await
}

/// A form post on the admin listener, with extra headers.
pub async fn post_form(
    server: &TestServer,
    who: &Issued,
    path: &str,
    form: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request(
        &connector(server.pki.ca.certificate(), Some(who)),
        server.app.admin_address(),
        "POST",
        path,
        &all,
        form.as_bytes(),
    )
    .await
    .unwrap()
}

/// The CSRF token in a page's forms.
pub fn token(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token")
        + 19;
    page[start..start + 64].to_owned()
}
