//! A node without listeners: storage with the official example lists imported, a publisher
//! with a test signing key, the mutation workflow, and a manual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use stelselnode::clock::ManualClock;
use stelselnode::config::{Config, PublicationConfig};
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{ListEntries, ListKind, Volgnummer};
use stelselnode::import::import_document;
use stelselnode::integrity;
use stelselnode::mutations::{MutationWorkflow, WorkflowSettings};
use stelselnode::publication::{PublishOptions, assemble};
use stelselnode::services::Services;
use stelselnode::sla::SlaPolicy;
use stelselnode::xml::parse_list;

use super::signer::{Signer, signer};
use super::{TestDatabase, official_example};

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-04T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub struct Node {
    /// Built by `Services::build`, as `serve` builds them.
    pub services: Services,
    pub clock: ManualClock,
    pub signer: Arc<Signer>,
    pub db: TestDatabase,
    /// The configuration its services were built from; replicas read its key files.
    pub config: Config,
    key_files: Arc<tempfile::TempDir>,
}

/// A node whose four lists are the official examples, imported, nothing published yet.
pub async fn node(db: TestDatabase, algorithm: KeyAlgorithm) -> Node {
    for list in ListKind::ALL {
        let bytes = std::fs::read(official_example(list)).unwrap();
        import_document(db.storage.as_ref(), list, &bytes, "cli:test", t0())
            .await
            .unwrap();
    }
    let clock = ManualClock::new(t0());
    let signer = signer(algorithm);
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    };
    let mut config = Config::default();
    config.database.url = db.url.clone();
    config.signing.key_file = write("signer.key", &signer.key_pem);
    config.signing.certificate_chain_file = write("signer.pem", &signer.certificate_pem);
    configure_log_key(&mut config, write);
    let services = Services::build(&config, db.storage.clone(), Arc::new(clock.clone())).unwrap();
    Node {
        services,
        clock,
        signer: Arc::new(signer),
        db,
        config,
        key_files: Arc::new(files),
    }
}

/// The origin line of the test nodes' transparency log checkpoints.
pub const LOG_ORIGIN: &str = "test.example/stelselnode";

/// Gives `config` a new transparency log key, written by `write(name, content)` as `log.key`,
/// its verifier key as `log.vkey`.
pub fn configure_log_key(config: &mut Config, write: impl Fn(&str, &str) -> String) {
    let (log_key, log_verifier) = stelselnode::transparency::generate_note_key(LOG_ORIGIN);
    config.transparency.origin = LOG_ORIGIN.into();
    config.transparency.key_file = write("log.key", &log_key);
    write("log.vkey", &log_verifier);
}

impl Node {
    /// The transparency log's verifier key (`<name>+<id>+<base64 key>`).
    pub fn log_verifier(&self) -> String {
        std::fs::read_to_string(self.key_files.path().join("log.vkey")).unwrap()
    }
}

pub fn options() -> PublishOptions {
    PublishOptions {
        confirm_mass_change: false,
        published_by: "test".into(),
    }
}

/// The exact bytes and signature of a stored version.
pub async fn published(node: &Node, list: ListKind, n: Volgnummer) -> (Vec<u8>, Vec<u8>) {
    let stored = node.db.storage.version(list, n).await.unwrap().unwrap();
    (assemble(&stored).unwrap(), stored.signature)
}

/// A consumer node's copy of version `n` of `list`: `NAME.xml` and `NAME.xml.sig` in `dir`,
/// as `archive restore --copy` takes them.
pub async fn consumer_copy(
    node: &Node,
    list: ListKind,
    n: Volgnummer,
    dir: &std::path::Path,
    name: &str,
) -> stelselnode::archive::ConsumerCopy {
    let (bytes, signature) = published(node, list, n).await;
    let copy = stelselnode::archive::ConsumerCopy {
        list_file: dir.join(format!("{name}.xml")),
        signature: dir.join(format!("{name}.xml.sig")),
    };
    std::fs::write(&copy.list_file, &bytes).unwrap();
    std::fs::write(&copy.signature, &signature).unwrap();
    copy
}

/// The current Whitelist version of `node`.
pub async fn current_whitelist(node: &Node) -> stelselnode::domain::VersionRecord {
    let current = node.db.storage.current_version(ListKind::Whitelist).await;
    current.unwrap().expect("a published Whitelist")
}

/// A consumer fetches version `n` of the Whitelist from `from` (signed under `signer`'s CA)
/// and checks it as `stelselnode verify --state` does; accepted, it goes into its state.
pub async fn accept(
    signer: &Node,
    consumer: &mut stelselnode::consumer::ConsumerState,
    n: Volgnummer,
    from: &Node,
) -> Result<(), stelselnode::consumer::ConsumerError> {
    use stelselnode::clock::Clock;
    let (bytes, signature) = published(from, ListKind::Whitelist, n).await;
    let anchors = [signer.signer.ca.certificate().clone()];
    let verdict = stelselnode::consumer::verify_fetched(
        &bytes,
        &signature,
        &anchors,
        from.clock.now(),
        consumer,
        None,
    )?;
    consumer.accept(&verdict);
    Ok(())
}

/// The entries of every list's current published version, parsed back from the stored bytes.
pub async fn published_entries(node: &Node) -> BTreeMap<ListKind, ListEntries> {
    let mut lists = BTreeMap::new();
    for list in ListKind::ALL {
        if let Some(current) = node.db.storage.current_version(list).await.unwrap() {
            let (bytes, _) = published(node, list, current.volgnummer).await;
            lists.insert(list, parse_list(&bytes, list).unwrap().entries);
        }
    }
    lists
}

/// The invariant of rule 4: the current published versions refer only to each other.
pub async fn published_lists_consistent(node: &Node) -> Result<(), String> {
    let inconsistencies = integrity::inconsistencies(&published_entries(node).await);
    match inconsistencies.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "the published lists are inconsistent: {inconsistencies:?}"
        )),
    }
}

pub async fn assert_published_lists_consistent(node: &Node) {
    published_lists_consistent(node).await.unwrap();
}

impl Node {
    /// The same node — signer, configuration, clock — on `services` over another database
    /// (a restored one).
    pub fn on(&self, services: Services, db: TestDatabase) -> Node {
        Node {
            services,
            clock: self.clock.clone(),
            signer: self.signer.clone(),
            db,
            config: self.config.clone(),
            key_files: self.key_files.clone(),
        }
    }

    /// Another workflow on this node, sharing its publisher, whose approved changes wait
    /// `seconds` before the schedule publishes them.
    pub fn workflow_with_delay(&self, seconds: u64) -> MutationWorkflow {
        let settings = WorkflowSettings::new(
            &PublicationConfig {
                auto_publish_delay_seconds: seconds,
                ..self.config.publication.clone()
            },
            Arc::new(SlaPolicy::new(&self.config.sla)),
        );
        MutationWorkflow::new(
            self.db.storage.clone(),
            self.services.publisher.clone(),
            Arc::new(self.clock.clone()),
            settings,
        )
    }

    /// The services of a second node on the same database and configuration (with
    /// `auto_publish_delay_seconds` = `seconds`): connections, a publisher and a
    /// working-state cache of its own, as a replica behind a load balancer has.
    pub async fn replica_with_delay(&self, seconds: u64) -> Services {
        let storage = stelselnode::storage::connect(&self.db.url).await.unwrap();
        let mut config = self.config.clone();
        config.publication.auto_publish_delay_seconds = seconds;
        Services::build(&config, storage, Arc::new(self.clock.clone())).unwrap()
    }

    /// The services of this node with `archive.ca_file` naming the signer's CA: the archive
    /// check verifies every signature, an export follows only bundles under that CA.
    pub fn services_with_archive_ca(&self) -> Services {
        let ca_file = self.key_files.path().join("archive-ca.pem");
        std::fs::write(&ca_file, self.signer.ca.certificate_pem()).unwrap();
        let mut config = self.config.clone();
        config.archive.ca_file = ca_file.display().to_string();
        Services::build(
            &config,
            self.db.storage.clone(),
            Arc::new(self.clock.clone()),
        )
        .unwrap()
    }

    /// Publishes `list` (unconfirmed); it must be published.
    pub async fn publish(&self, list: ListKind) -> stelselnode::domain::VersionRecord {
        self.services
            .publisher
            .publish(list, &options())
            .await
            .unwrap()
    }

    /// Publishes all four lists, the referenced ones first.
    pub async fn publish_all(&self) {
        for list in ListKind::PUBLICATION_ORDER {
            self.publish(list).await;
        }
    }

    /// Rule 4 over the working state of the four lists.
    pub async fn working_state_inconsistencies(&self) -> Vec<stelselnode::domain::Violation> {
        let mut lists = BTreeMap::new();
        for list in ListKind::ALL {
            let state = self.db.storage.working_state(list).await.unwrap();
            lists.insert(list, state.entries);
        }
        integrity::inconsistencies(&lists)
    }
}
