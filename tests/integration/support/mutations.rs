//! Mutations and audit records as staff make them, for the storage contract and the
//! workflow tests.

use chrono::{DateTime, Duration, Utc};

use serde_json::{Value, json};
use stelselnode::domain::{
    AnyEntry, AuditOutcome, AuditRecord, Decision, EntryChange, Hostname, MedMijNode,
    MutationDecision, NewMutation, Role, SlaDeadline,
};
use stelselnode::mutations::{Actor, Submission, parse_submission};
use stelselnode::storage::{Storage, StorageError};

pub const LOKET: &str = "loket-fingerprint";
pub const BEHEER: &str = "beheer-fingerprint";
pub const BEHEER2: &str = "beheer2-fingerprint";

pub fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-04T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

pub fn whitelist_node(host: &str) -> AnyEntry {
    AnyEntry::MedMijNode(MedMijNode {
        hostname: Hostname::parse(host).unwrap(),
    })
}

/// A mutation as loket staff submit it.
pub fn submission(change: EntryChange, by: &str, at: DateTime<Utc>) -> NewMutation {
    NewMutation {
        change,
        on_behalf_of: "Voorbeeld PGO".into(),
        reference: "MEDMIJ-1234".into(),
        urgent: false,
        agreed_deadline: None,
        effective_from: None,
        submitted_by: by.into(),
        submitted_by_subject: format!("CN={by}"),
        submitted_at: at,
        sla: SlaDeadline {
            deadline: at + Duration::days(2),
            calendar: "test".into(),
        },
    }
}

pub fn audit(by: &str, action: &str, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        at,
        actor_subject: format!("CN={by}"),
        actor_fingerprint: Some(by.into()),
        role: Some("beheer".into()),
        action: action.into(),
        object: None,
        on_behalf_of: Some("Voorbeeld PGO".into()),
        outcome: AuditOutcome::Allowed,
        reason: None,
    }
}

pub async fn decide(
    storage: &dyn Storage,
    id: i64,
    decision: Decision,
    by: &str,
    at: DateTime<Utc>,
) -> Result<stelselnode::domain::MutationRecord, StorageError> {
    let record = audit(by, decision.name(), at).about(format!("mutations/{id}"));
    storage
        .decide_mutation(
            &MutationDecision {
                id,
                decision,
                by: by.into(),
                by_subject: format!("CN={by}"),
                at,
            },
            &record,
            None,
        )
        .await
}

/// A staff member for in-process workflow tests: fingerprint `{name}-fingerprint`,
/// subject `CN={name}`.
pub fn actor(name: &str, roles: &[Role]) -> Actor {
    Actor {
        fingerprint: format!("{name}-fingerprint"),
        subject: format!("CN={name}"),
        roles: roles.to_vec(),
        action: "test".into(),
    }
}

/// A submission as `POST /mutations` parses it.
pub fn parsed(body: &Value) -> Submission {
    parse_submission(body).unwrap_or_else(|v| panic!("{body}: {v}"))
}

// Request bodies as loket staff send them.

pub const NEW_HOST: &str = "medmij.nieuwexis.nl";

pub fn whitelist_upsert(host: &str, base: i64) -> Value {
    json!({
        "list": "whitelist", "operation": "upsert", "base_version": base,
        "entry": { "hostname": host },
        "on_behalf_of": "Nieuwe XIS B.V.", "reference": "MEDMIJ-100"
    })
}

pub fn delete(list: &str, key: &str, base: i64) -> Value {
    json!({
        "list": list, "operation": "delete", "key": key, "base_version": base,
        "on_behalf_of": "Stichting MedMij", "reference": "MEDMIJ-200"
    })
}

pub fn zorgaanbieder(naam: &str, gegevensdiensten: Value) -> Value {
    json!({
        "list": "zal", "operation": "upsert", "base_version": 0,
        "entry": { "naam": naam, "gegevensdiensten": gegevensdiensten },
        "on_behalf_of": "Ziekenhuis Nieuw", "reference": "MEDMIJ-300"
    })
}

pub fn gegevensdienst(id: &str, host: &str) -> Value {
    json!({
        "id": id,
        "authorization_endpoint": format!("https://{host}/oauth/authorize"),
        "token_endpoint": format!("https://{host}/oauth/token"),
        "systeemrollen": [{ "code": "LAB-1.0-LRB-FHIR", "resource_endpoint": format!("https://{host}/fhir") }]
    })
}

pub fn gnl_upsert(id: &str, weergavenaam: &str, base: i64) -> Value {
    json!({
        "list": "gnl", "operation": "upsert", "base_version": base,
        "entry": { "id": id, "weergavenaam": weergavenaam },
        "on_behalf_of": "Stichting MedMij", "reference": "MEDMIJ-400"
    })
}
