//! A mutation (SPEC §4): one change of one entry, its life cycle
//! `submitted → approved → published` (or `rejected`, `withdrawn`), and the rule for who may
//! decide what on it (the state machine and the four-eyes rule of SPEC §1).

use chrono::{DateTime, Utc};

use super::{AnyEntry, ListKind, MutationSla, SlaDeadline, Violations};

/// A change that breaks an integrity rule of SPEC §4, found when it is checked against the
/// working state (at submission, and again at approval).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// The change breaks an integrity rule (422).
    #[error("the change breaks the integrity rules: {0}")]
    Invalid(Violations),
    /// Rule 8: the entry is no longer at the version the change was based on (409).
    #[error(
        "{list} entry \"{key}\" is at version {current}, the change was based on version {expected}; \
         fetch the entry again and base the change on its current version"
    )]
    Stale {
        list: ListKind,
        key: String,
        expected: i64,
        current: i64,
    },
}

/// A decision that does not fit the mutation as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The mutation is not in the state the decision needs (e.g. approving a published one).
    #[error("mutation {id} is {status}")]
    WrongState { id: i64, status: MutationStatus },
    /// Four-eyes rule (SPEC §1): the submitter never decides on their own mutation.
    #[error(
        "mutation {id} was submitted with this certificate; another beheer identity must decide on it"
    )]
    FourEyes { id: i64 },
    #[error("mutation {id} can only be withdrawn by the certificate that submitted it")]
    NotSubmitter { id: i64 },
}

/// A change of one entry, based on the version the submitter saw.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryChange {
    list: ListKind,
    key: String,
    new: Option<AnyEntry>,
    base_version: i64,
}

impl EntryChange {
    /// Adds or replaces `entry`; `base_version` 0 means "there is no such entry yet".
    pub fn upsert(entry: AnyEntry, base_version: i64) -> Self {
        Self {
            list: entry.list(),
            key: entry.key().to_owned(),
            new: Some(entry),
            base_version,
        }
    }

    pub fn delete(list: ListKind, key: impl Into<String>, base_version: i64) -> Self {
        Self {
            list,
            key: key.into(),
            new: None,
            base_version,
        }
    }

    pub fn list(&self) -> ListKind {
        self.list
    }
    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn base_version(&self) -> i64 {
        self.base_version
    }
    pub fn operation(&self) -> Operation {
        match self.new {
            Some(_) => Operation::Upsert,
            None => Operation::Delete,
        }
    }
    /// The entry an upsert stores.
    pub fn entry(&self) -> Option<&AnyEntry> {
        self.new.as_ref()
    }
    /// The JSON body to store; `None` removes the entry.
    pub fn body_json(&self) -> Option<String> {
        self.new.as_ref().map(AnyEntry::to_json)
    }
}

/// A change request as submitted (SPEC §4).
#[derive(Debug, Clone)]
pub struct NewMutation {
    pub change: EntryChange,
    pub on_behalf_of: String,
    pub reference: String,
    pub urgent: bool,
    pub agreed_deadline: Option<DateTime<Utc>>,
    /// Not published before this instant.
    pub effective_from: Option<DateTime<Utc>>,
    /// SHA-256 fingerprint and subject of the submitter's certificate.
    pub submitted_by: String,
    pub submitted_by_subject: String,
    pub submitted_at: DateTime<Utc>,
    /// The SLA deadline it gets as it is accepted.
    pub sla: SlaDeadline,
}

/// The life cycle of a mutation: `submitted → approved → published`, or `rejected` or
/// `withdrawn`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MutationStatus {
    Submitted,
    Approved,
    Published,
    Rejected,
    Withdrawn,
}

impl MutationStatus {
    pub const ALL: [MutationStatus; 5] = [
        Self::Submitted,
        Self::Approved,
        Self::Published,
        Self::Rejected,
        Self::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Published => "published",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
}

impl std::fmt::Display for MutationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MutationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown mutation status \"{s}\""))
    }
}

/// Where a mutation stands, with everything it was submitted with.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MutationRecord {
    pub id: i64,
    pub list: ListKind,
    pub entry_key: String,
    pub operation: Operation,
    /// The entry as it will be stored (upsert only).
    pub entry: Option<serde_json::Value>,
    pub base_version: i64,
    pub on_behalf_of: String,
    pub reference: String,
    pub urgent: bool,
    pub agreed_deadline: Option<DateTime<Utc>>,
    pub effective_from: Option<DateTime<Utc>>,
    pub status: MutationStatus,
    /// SHA-256 fingerprint of the submitter's certificate, and its subject.
    pub submitted_by: String,
    pub submitted_by_subject: String,
    pub submitted_at: DateTime<Utc>,
    /// Who approved or rejected it (fingerprint, subject), and when.
    pub decided_by: Option<String>,
    pub decided_by_subject: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// When the change reached the working state.
    pub applied_at: Option<DateTime<Utc>>,
    /// The first version that contains the change, and when it was published.
    pub published_volgnummer: Option<i64>,
    pub published_at: Option<DateTime<Utc>>,
    /// Its deadline and, once completed, how it counted for the SLA.
    pub sla: MutationSla,
}

impl MutationRecord {
    /// Waiting for a decision, or approved and not yet in a published version.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            MutationStatus::Submitted | MutationStatus::Approved
        )
    }

    /// When it was published, rejected or withdrawn; `None` while it is open.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            MutationStatus::Submitted | MutationStatus::Approved => None,
            MutationStatus::Published => self.published_at,
            MutationStatus::Rejected => self.decided_at,
            MutationStatus::Withdrawn => self.withdrawn_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Upsert,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }
}

/// A decision on a submitted mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// By beheer, never the submitter; the change is applied unless `effective_from` lies ahead.
    Approve,
    /// By beheer, never the submitter; also cancels an approved change that is not yet applied.
    Reject { reason: String },
    /// By the submitter, while nobody has decided.
    Withdraw,
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject { .. } => "reject",
            Decision::Withdraw => "withdraw",
        }
    }
}

/// Who decides what on which mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationDecision {
    pub id: i64,
    pub decision: Decision,
    /// SHA-256 fingerprint and subject of the deciding certificate.
    pub by: String,
    pub by_subject: String,
    pub at: DateTime<Utc>,
}

impl MutationDecision {
    /// Whether the decision fits the mutation as it is now: the state machine and the
    /// four-eyes rule, checked inside the deciding transaction.
    pub fn check(&self, record: &MutationRecord) -> Result<(), DecisionError> {
        let id = record.id;
        let wrong_state = || DecisionError::WrongState {
            id,
            status: record.status,
        };
        let undecided = record.status == MutationStatus::Submitted;
        match &self.decision {
            Decision::Approve | Decision::Reject { .. } if record.submitted_by == self.by => {
                Err(DecisionError::FourEyes { id })
            }
            Decision::Approve if !undecided => Err(wrong_state()),
            Decision::Reject { .. }
                if !(undecided
                    || record.status == MutationStatus::Approved
                        && record.applied_at.is_none()) =>
            {
                Err(wrong_state())
            }
            Decision::Withdraw if record.submitted_by != self.by => {
                Err(DecisionError::NotSubmitter { id })
            }
            Decision::Withdraw if !undecided => Err(wrong_state()),
            _ => Ok(()),
        }
    }

    /// Whether the approved change goes into the working state now.
    pub fn applies_now(&self, record: &MutationRecord) -> bool {
        self.decision == Decision::Approve
            && record.effective_from.is_none_or(|from| from <= self.at)
    }
}
