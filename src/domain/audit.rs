//! The audit log's record (SPEC §7): who did what, when, on whose behalf, with what outcome.
//! Lists are public; the audit log is not.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// `text` with every control, bidirectional or zero-width character written as `\u{XXXX}`.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c.is_control() || super::text::is_deceptive(c) {
            true => out.push_str(&format!("\\u{{{:04X}}}", c as u32)),
            false => out.push(c),
        }
    }
    out
}

impl AuditRecord {
    /// The record as the audit log keeps it: what a request carried is recorded as it was,
    /// but every control, bidirectional or zero-width character is written as `\u{XXXX}`,
    /// so that no record acts on a terminal or a log viewer, or is refused by the database
    /// (PostgreSQL takes no NUL in text).
    pub fn printable(&self) -> Self {
        let optional = |text: &Option<String>| text.as_deref().map(printable);
        Self {
            at: self.at,
            actor_subject: printable(&self.actor_subject),
            actor_fingerprint: optional(&self.actor_fingerprint),
            role: optional(&self.role),
            action: printable(&self.action),
            object: optional(&self.object),
            on_behalf_of: optional(&self.on_behalf_of),
            outcome: self.outcome,
            reason: optional(&self.reason),
        }
    }

    /// The same record about `object`.
    pub fn about(&self, object: impl Into<String>) -> Self {
        Self {
            object: Some(object.into()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_log_keeps_what_came_in_as_printable_text() {
        let record = AuditRecord {
            at: DateTime::<Utc>::MIN_UTC,
            actor_subject: "CN=loket".into(),
            actor_fingerprint: None,
            role: None,
            action: "GET /entries/{list}/{key}".into(),
            object: Some("zal/a\0b\u{202E}c".into()),
            on_behalf_of: Some("Café".into()),
            outcome: AuditOutcome::Refused,
            reason: None,
        };
        let kept = record.printable();
        assert_eq!(kept.object.as_deref(), Some("zal/a\\u{0000}b\\u{202E}c"));
        assert_eq!(kept.on_behalf_of.as_deref(), Some("Café"));
        assert_eq!(kept.action, record.action);
    }
}
