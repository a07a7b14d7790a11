//! Roles (SPEC §1) and how a client certificate gets them.

use serde::{Deserialize, Serialize};

use crate::config::AdminIdentity;
use crate::tls::ClientIdentity;

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
}

/// The roles configured for a certificate: matched by fingerprint or by subject CN.
pub fn roles_of(identity: &ClientIdentity, configured: &[AdminIdentity]) -> Vec<Role> {
    let mut roles: Vec<Role> = configured
        .iter()
        .filter(|c| {
            c.sha256_fingerprint
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(&identity.fingerprint))
                || (c.common_name.is_some() && c.common_name == identity.common_name)
        })
        .flat_map(|c| c.roles.iter().copied())
        .collect();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    roles
}
