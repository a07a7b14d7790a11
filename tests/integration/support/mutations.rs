//! Mutations and audit records as staff make them, for the storage contract and the
//! workflow tests.

use chrono::{DateTime, Duration, Utc};

use stelselnode::domain::{
    AnyEntry, AuditOutcome, AuditRecord, Decision, EntryChange, Hostname, MedMijNode,
    MutationDecision, NewMutation,
};
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
        )
        .await
}
