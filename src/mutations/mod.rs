//! Mutations as loket and beheer staff handle them (SPEC §4): a submission parsed from its
//! JSON form (`json.rs`), the integrity checks of one change against the working state of all
//! four lists (`checks.rs`), the release clean-up as a set of mutations (`retire.rs`), and the
//! `MutationWorkflow` service that runs them against storage and the publisher
//! (`workflow.rs`). Nothing here knows of HTTP or SQL.

// Request text is never sliced or indexed where it could panic (issue 11).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

mod checks;
mod json;
mod queue;
mod retire;
mod schedule;
mod workflow;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::{
    AnyEntry, Deelnemer, EntryChange, GegevensdienstId, Hostname, InvalidValue, ListKind,
    MutationRecord, Rule, Ticketreferentie, Violations, Zorgaanbiedernaam,
};

pub use crate::domain::CheckError;
pub use checks::{Stage, check_change};
pub use queue::{EntryVersion, OpenQueue, QueuedMutation};
pub use retire::{RetirePlan, retire_interface_version};
pub use workflow::{
    Actor, Approval, MutationWorkflow, PublicationOutcome, RetireOutcome, RetireRequest,
    WorkflowError, WorkflowSettings,
};

/// A mutation request that passed rules 1–3: every value obeys its facet, the entry its
/// structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub change: EntryChange,
    pub on_behalf_of: Deelnemer,
    pub reference: Ticketreferentie,
    pub urgent: bool,
    pub agreed_deadline: Option<DateTime<Utc>>,
    /// Not published before this instant.
    pub effective_from: Option<DateTime<Utc>>,
}

const SUBMISSION_FIELDS: [&str; 10] = [
    "list",
    "operation",
    "entry",
    "key",
    "base_version",
    "on_behalf_of",
    "reference",
    "urgent",
    "agreed_deadline",
    "effective_from",
];

fn instant(value: String) -> Result<DateTime<Utc>, InvalidValue> {
    DateTime::parse_from_rfc3339(&value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            InvalidValue::new(
                Rule::Pattern,
                "must be an RFC 3339 instant with offset, e.g. 2026-12-01T09:00:00Z",
            )
        })
}

/// The key of an entry of `list`, normalised as the entry's own key is (hostnames lowercase).
fn entry_key(list: ListKind) -> impl FnOnce(String) -> Result<String, InvalidValue> {
    move |value| match list {
        ListKind::Zal => Zorgaanbiedernaam::parse(value).map(String::from),
        ListKind::Ocl | ListKind::Whitelist => Hostname::parse(value).map(String::from),
        ListKind::Gnl => GegevensdienstId::parse(value).map(String::from),
    }
}

/// Parses a submission (`POST /mutations`, `POST /mutations/validate`), reporting every
/// refusal with its field.
pub fn parse_submission(value: &Value) -> Result<Submission, Violations> {
    let mut w = json::Walker::default();
    let submission = (|| {
        let f = w.object(value, "$", &SUBMISSION_FIELDS)?;
        let list = w.text(f, "$", "list", |v| {
            v.parse::<ListKind>().map_err(|_| {
                InvalidValue::new(Rule::Pattern, "must be one of zal, ocl, gnl, whitelist")
            })
        });
        let base_version = match f.get("base_version").map(Value::as_i64) {
            Some(Some(n)) if n >= 0 => Some(n),
            _ => {
                w.refuse(
                    "$.base_version",
                    Rule::Range,
                    "is required: the version of the entry this change is based on (0 for a new entry)",
                );
                None
            }
        };
        let operation = w.text(f, "$", "operation", |v| match v.as_str() {
            "upsert" | "delete" => Ok(v),
            _ => Err(InvalidValue::new(Rule::Pattern, "must be upsert or delete")),
        });
        let on_behalf_of = w.text(f, "$", "on_behalf_of", Deelnemer::parse);
        let reference = w.text(f, "$", "reference", Ticketreferentie::parse);
        let urgent = match f.get("urgent") {
            None | Some(Value::Null) => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                w.refuse("$.urgent", Rule::Structure, "must be true or false");
                None
            }
        };
        let agreed_deadline = w.optional_text(f, "$", "agreed_deadline", instant);
        // The SLA deadline agreed for an urgent mutation (seed 001); without urgency it would
        // be silently ignored, so it is refused.
        if urgent == Some(false) && matches!(agreed_deadline, Some(Some(_))) {
            w.refuse(
                "$.agreed_deadline",
                Rule::Structure,
                "only an urgent mutation has an agreed deadline; set urgent to true or leave it out",
            );
        }
        let effective_from = w.optional_text(f, "$", "effective_from", instant);
        let (list, operation, base_version) = (list?, operation?, base_version?);
        let change = match operation.as_str() {
            "upsert" => {
                if f.contains_key("key") {
                    w.refuse(
                        "$.key",
                        Rule::Structure,
                        "an upsert names its entry in entry",
                    );
                }
                let Some(entry) = f.get("entry") else {
                    w.refuse(
                        "$.entry",
                        Rule::Structure,
                        "an upsert needs the whole entry",
                    );
                    return None;
                };
                let entry: AnyEntry = json::entry(&mut w, list, entry, "$.entry")?;
                EntryChange::upsert(entry, base_version)
            }
            _ => {
                if f.contains_key("entry") {
                    w.refuse("$.entry", Rule::Structure, "a delete names only the key");
                }
                let key = w.text(f, "$", "key", entry_key(list))?;
                EntryChange::delete(list, key, base_version)
            }
        };
        Some(Submission {
            change,
            on_behalf_of: on_behalf_of?,
            reference: reference?,
            urgent: urgent?,
            agreed_deadline: agreed_deadline?,
            effective_from: effective_from?,
        })
    })();
    w.finish(submission)
}

/// The change a stored mutation makes, its entry checked again like a new submission.
pub fn change_of(record: &MutationRecord) -> Result<EntryChange, Violations> {
    let mut w = json::Walker::default();
    let change = match &record.entry {
        Some(entry) => json::entry(&mut w, record.list, entry, "$.entry")
            .map(|e| EntryChange::upsert(e, record.base_version)),
        None => Some(EntryChange::delete(
            record.list,
            record.entry_key.clone(),
            record.base_version,
        )),
    };
    w.finish(change)
}

#[cfg(test)]
mod tests;
