//! A node without listeners: storage with the official example lists imported, a publisher
//! with a test signing key, the mutation workflow, and a manual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use stelselnode::clock::ManualClock;
use stelselnode::config::{PublicationConfig, SlaConfig};
use stelselnode::devpki::KeyAlgorithm;
use stelselnode::domain::{ListEntries, ListKind, Volgnummer};
use stelselnode::import::import_document;
use stelselnode::integrity;
use stelselnode::mutations::{MutationWorkflow, WorkflowSettings};
use stelselnode::publication::{PublishOptions, Publisher, Settings, assemble};
use stelselnode::sla::SlaPolicy;
use stelselnode::storage::Storage;
use stelselnode::xml::parse_list;

use super::signer::{Signer, signer};
use super::{TestDatabase, official_example};

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-04T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub struct Node {
    pub publisher: Arc<Publisher>,
    pub workflow: Arc<MutationWorkflow>,
    pub clock: ManualClock,
    pub signer: Signer,
    pub db: TestDatabase,
}

pub fn publisher_for(
    storage: Arc<dyn Storage>,
    clock: &ManualClock,
    signer: &Signer,
) -> Arc<Publisher> {
    let key = stelselnode::signing::SigningKey::from_der(
        signer.key_der.secret_pkcs8_der(),
        vec![signer.certificate.clone()],
    )
    .unwrap();
    Arc::new(Publisher::new(
        storage,
        Arc::new(clock.clone()),
        Settings::from(&PublicationConfig::default()),
        key,
    ))
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
    let publisher = publisher_for(db.storage.clone(), &clock, &signer);
    let workflow = Arc::new(MutationWorkflow::new(
        db.storage.clone(),
        publisher.clone(),
        Arc::new(clock.clone()),
        delayed(0),
    ));
    Node {
        publisher,
        workflow,
        clock,
        signer,
        db,
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

fn delayed(seconds: u64) -> WorkflowSettings {
    WorkflowSettings::new(
        &PublicationConfig {
            auto_publish_delay_seconds: seconds,
            ..PublicationConfig::default()
        },
        Arc::new(SlaPolicy::new(&SlaConfig::default())),
    )
}

impl Node {
    /// Another workflow on this node whose approved changes wait `seconds` before the
    /// schedule publishes them.
    pub fn workflow_with_delay(&self, seconds: u64) -> MutationWorkflow {
        MutationWorkflow::new(
            self.db.storage.clone(),
            self.publisher.clone(),
            Arc::new(self.clock.clone()),
            delayed(seconds),
        )
    }

    /// The workflow of a second node on the same database, with connections, a publisher and
    /// a working-state cache of its own, as a replica behind a load balancer has.
    pub async fn replica_with_delay(&self, seconds: u64) -> MutationWorkflow {
        let storage = stelselnode::storage::connect(&self.db.url).await.unwrap();
        let publisher = publisher_for(storage.clone(), &self.clock, &self.signer);
        MutationWorkflow::new(
            storage,
            publisher,
            Arc::new(self.clock.clone()),
            delayed(seconds),
        )
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
