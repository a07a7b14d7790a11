//! The audit log's record (SPEC §7): who did what, when, on whose behalf, with what outcome.
//! Lists are public; the audit log is not.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    Allowed,
    Refused,
    Failed,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Failed => "failed",
        }
    }
}

impl std::str::FromStr for AuditOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Allowed, Self::Refused, Self::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown audit outcome \"{s}\""))
    }
}

/// One line of the audit log: who did what, when, on whose behalf, with what outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub actor_subject: String,
    pub actor_fingerprint: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub object: Option<String>,
    pub on_behalf_of: Option<String>,
    pub outcome: AuditOutcome,
    pub reason: Option<String>,
}

impl AuditRecord {
    /// The same record about `object`.
    pub fn about(&self, object: impl Into<String>) -> Self {
        Self {
            object: Some(object.into()),
            ..self.clone()
        }
    }
}
