//! The roles of staff and systems (SPEC §1).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// MedMij-loket staff: submit, validate, withdraw mutations.
    Loket,
    /// Stichting MedMij beheer: approve, reject, publish, release clean-up, read everything.
    Beheer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Loket => "loket",
            Role::Beheer => "beheer",
        }
    }

    /// Roles as the audit log writes them: `beheer,loket`.
    pub fn label(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}
