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

use crate::domain::{IndexedVersion, ListKind, LogLeaf, VersionStatus, Volgnummer};
use crate::signing::{VerifyError, VersionProperties, verify_signature};
use crate::transparency::{
    LogCheckError, SeenCheckpoint, check_consistency, check_inclusion, proof_hashes,
    verified_checkpoint,
};
use crate::xml::parse_list;

/// What a consumer remembers per list: the newest version it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerState {
    pub lists: BTreeMap<ListKind, Accepted>,
    /// The largest transparency log checkpoint seen (issue 26): every later one must be
    /// consistent with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<SeenCheckpoint>,
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

    /// Keeps `checkpoint` when it is larger than the one kept (both checked consistent).
    pub fn keep_checkpoint(&mut self, checkpoint: SeenCheckpoint) {
        if self
            .checkpoint
            .as_ref()
            .is_none_or(|kept| kept.size < checkpoint.size)
        {
            self.checkpoint = Some(checkpoint);
        }
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

/// What a consumer fetched from the transparency log for a version (issue 26).
pub struct LogEvidence<'a> {
    /// The log's verifier key, `<name>+<id>+<key>`.
    pub verifier_key: &'a str,
    /// `/log/checkpoint`.
    pub checkpoint: &'a [u8],
    /// `/log/proof/inclusion?index=<log_index>&tree_size=<the checkpoint's size>`.
    pub inclusion_proof: &'a [u8],
    /// `/log/proof/consistency` between the checkpoint in the state and this one, when their
    /// sizes differ.
    pub consistency_proof: Option<&'a [u8]>,
}

/// That the verified version is in the log as a checkpoint signed by the log's key shows it,
/// and that this checkpoint is consistent with the one `state` kept. The version's leaf is
/// made from its line in the node's index, which must say what the signature says.
pub fn check_in_log(
    verdict: &Verdict,
    index: &[IndexedVersion],
    evidence: &LogEvidence<'_>,
    state: &ConsumerState,
) -> Result<SeenCheckpoint, LogCheckError> {
    let properties = &verdict.properties;
    let line = index
        .iter()
        .find(|v| v.record.list == properties.list && v.record.volgnummer == properties.volgnummer)
        .ok_or_else(|| LogCheckError::NotIncluded("the version index does not list it".into()))?;
    let record = &line.record;
    let as_signed = record.sha256 == verdict.sha256
        && record.previous_sha256 == properties.previous_sha256
        && record.valid_from == properties.valid_from.instant()
        && record.expires_at == properties.expires_at.instant();
    if !as_signed {
        return Err(LogCheckError::NotIncluded(
            "its line in the version index differs from the signed version".into(),
        ));
    }
    let log_index = line
        .log_index
        .ok_or_else(|| LogCheckError::NotIncluded("the version index gives no log_index".into()))?;
    let checkpoint = verified_checkpoint(evidence.checkpoint, evidence.verifier_key)?;
    let inclusion = proof_hashes(evidence.inclusion_proof).map_err(LogCheckError::NotIncluded)?;
    check_inclusion(
        &checkpoint,
        LogLeaf::of(record).as_bytes(),
        log_index,
        &inclusion,
    )?;
    if let Some(kept) = &state.checkpoint {
        let consistency = match evidence.consistency_proof {
            Some(proof) => proof_hashes(proof).map_err(LogCheckError::Checkpoint)?,
            None => Vec::new(),
        };
        check_consistency(kept, &checkpoint, &consistency)?;
    }
    Ok(checkpoint)
}
