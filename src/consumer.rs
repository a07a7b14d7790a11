//! The verifier for consumers of the lists (`stelselnode verify`): checks a fetched list
//! against its detached signature, its validity window (and grace, when the node's version
//! index is given), and the last Volgnummer the consumer accepted: never an older one, never
//! the same one with other content (rollback), and the very next one only when it names the
//! accepted one as its predecessor (fork). A gap is accepted: a consumer may not fetch every
//! version, and a restore skips a margin of Volgnummers (issue 23).

// What consumers hand in is never sliced or indexed where it could panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::domain::{IndexedVersion, ListKind, VersionStatus, Volgnummer};
use crate::signing::{VerifyError, VersionProperties, verify_signature};
use crate::xml::parse_list;

/// What a consumer remembers per list: the newest version it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerState {
    pub lists: BTreeMap<ListKind, Accepted>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub volgnummer: Volgnummer,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("signature: {0}")]
    Signature(#[from] VerifyError),
    #[error("the list does not match its signed properties: {0}")]
    Mismatch(String),
    #[error("version {volgnummer} is not valid now: {reason}")]
    OutsideValidity {
        volgnummer: Volgnummer,
        reason: String,
    },
    #[error("rollback: Volgnummer {offered} is not newer than the accepted {accepted}")]
    Rollback {
        offered: Volgnummer,
        accepted: Volgnummer,
    },
    /// The version right after the accepted one names another predecessor: the list forked
    /// (a node that reused a Volgnummer after losing its database, for one).
    #[error(
        "fork: Volgnummer {offered} follows the accepted {accepted} but names another version as its predecessor"
    )]
    Fork {
        offered: Volgnummer,
        accepted: Volgnummer,
    },
}

impl ConsumerError {
    /// Exit status for scripts: 4 signature or content, 5 validity, 6 rollback or fork.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConsumerError::Signature(_) | ConsumerError::Mismatch(_) => 4,
            ConsumerError::OutsideValidity { .. } => 5,
            ConsumerError::Rollback { .. } | ConsumerError::Fork { .. } => 6,
        }
    }
}

/// A list that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub properties: VersionProperties,
    pub sha256: String,
    /// `Current`, or `Grace` when the index says the version was superseded less than the
    /// grace period ago.
    pub status: VersionStatus,
}

/// Runs every check; on success the caller records the version in its state.
pub fn verify_fetched(
    list_bytes: &[u8],
    signature: &[u8],
    trust_anchors: &[CertificateDer<'_>],
    now: DateTime<Utc>,
    state: &ConsumerState,
    index: Option<&[IndexedVersion]>,
) -> Result<Verdict, ConsumerError> {
    let check = verify_signature(signature, list_bytes, trust_anchors, now)?;
    let p = check.properties;
    let list =
        parse_list(list_bytes, p.list).map_err(|v| ConsumerError::Mismatch(v.to_string()))?;
    if list.volgnummer != p.volgnummer || list.tijdstempel != p.tijdstempel {
        return Err(ConsumerError::Mismatch(format!(
            "the document says Volgnummer {} at {}, the signature {} at {}",
            list.volgnummer, list.tijdstempel, p.volgnummer, p.tijdstempel
        )));
    }
    let outside = |reason: String| ConsumerError::OutsideValidity {
        volgnummer: p.volgnummer,
        reason,
    };
    if now < p.valid_from.instant() {
        return Err(outside(format!("valid from {}", p.valid_from)));
    }
    if now >= p.expires_at.instant() {
        return Err(outside(format!("expired at {}", p.expires_at)));
    }
    let indexed = index.and_then(|versions| {
        versions
            .iter()
            .map(|v| &v.record)
            .find(|v| v.volgnummer == p.volgnummer && v.sha256 == check.list_sha256)
    });
    let status = match indexed.and_then(|v| v.superseded_at.zip(v.grace_until)) {
        Some((superseded, grace_until)) if now >= superseded && now < grace_until => {
            VersionStatus::Grace
        }
        Some((superseded, grace_until)) if now >= superseded => {
            return Err(outside(format!(
                "superseded at {superseded}, grace ended at {grace_until}"
            )));
        }
        _ => VersionStatus::Current,
    };
    if let Some(accepted) = state.lists.get(&p.list) {
        let same = accepted.volgnummer == p.volgnummer && accepted.sha256 == check.list_sha256;
        if p.volgnummer < accepted.volgnummer || (p.volgnummer == accepted.volgnummer && !same) {
            return Err(ConsumerError::Rollback {
                offered: p.volgnummer,
                accepted: accepted.volgnummer,
            });
        }
        // The next version must name the accepted one; after a gap (versions this consumer
        // did not fetch, or a restore's margin) there is nothing to compare.
        let next = accepted.volgnummer.get().checked_add(1) == Some(p.volgnummer.get());
        if next && p.previous_sha256.as_deref() != Some(accepted.sha256.as_str()) {
            return Err(ConsumerError::Fork {
                offered: p.volgnummer,
                accepted: accepted.volgnummer,
            });
        }
    }
    Ok(Verdict {
        properties: p,
        sha256: check.list_sha256,
        status,
    })
}

impl ConsumerState {
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the state atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension("tmp");
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(temporary, path)
    }

    pub fn accept(&mut self, verdict: &Verdict) {
        self.lists.insert(
            verdict.properties.list,
            Accepted {
                volgnummer: verdict.properties.volgnummer,
                sha256: verdict.sha256.clone(),
            },
        );
    }
}
