//! How a client certificate gets its roles (SPEC §1): by fingerprint or subject CN, as
//! configured in `[[admin.identities]]`.

use crate::config::AdminIdentity;
pub use crate::domain::Role;
use crate::tls::ClientIdentity;

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
