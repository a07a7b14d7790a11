//! The layout of an archive bundle, shared by the exporter and the offline verifier:
//!
//! ```text
//! MANIFEST                                  what the bundle covers, every file's SHA-256 and size
//! MANIFEST.sig                              detached XML Signature over MANIFEST (node's key)
//! versions/<list>/<volgnummer>.json         the version's record (ArchivedVersion)
//! versions/<list>/<volgnummer>.header       the start of its bytes (declaration … </Volgnummer>)
//! versions/<list>/<volgnummer>.sig          its detached signature, as served
//! bodies/<body sha256>.gz                   the rest of its bytes, gzip, once per content
//! sla-report.json                           the SLA report of the period
//! mutations.jsonl.gz                        (format 2) every mutation submitted or changed
//!                                           since the period began, as it stood at export
//! audit.jsonl.gz                            (format 2) the audit records of the period
//! state.jsonl.gz                            (format 2) the working state at export: list
//!                                           heads, entries, retired ids, restore records
//! log-leaves.jsonl.gz                       (format 3) the transparency log from its first
//!                                           leaf to the last one published in the period,
//!                                           one JSON string per line, in leaf order
//! log-checkpoint                            (format 3) the log's signed checkpoint of exactly
//!                                           those leaves (absent: the node has no log key)
//! ```
//!
//! The log's leaves run from the first, not from the period's start: the bundle alone proves
//! its checkpoint, shows every version of the period is in the log (and every leaf of the
//! period in the bundle), and a restore from the oldest bundle still kept rebuilds the very
//! same tree. A leaf is about 300 bytes, some 60 gzipped: a year of versions adds a megabyte.
//!
//! The `.jsonl.gz` files hold one JSON object per line (`crate::storage::{MutationRow,
//! AuditRow, StateLine}`), gzip: with the versions they are everything a restore needs.
//!
//! A version's exact published bytes are its header followed by its gunzipped body. Versions
//! with the same entries (heartbeats above all) share one body file. A version whose bytes
//! retention purged has no body; its signature still vouches for its SHA-256 and the chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ListKind, VersionRecord};

pub const MANIFEST: &str = "MANIFEST";
pub const MANIFEST_SIGNATURE: &str = "MANIFEST.sig";
pub const SLA_REPORT: &str = "sla-report.json";
pub const MUTATIONS: &str = "mutations.jsonl.gz";
pub const AUDIT: &str = "audit.jsonl.gz";
pub const STATE: &str = "state.jsonl.gz";
pub const LOG_LEAVES: &str = "log-leaves.jsonl.gz";
pub const LOG_CHECKPOINT: &str = "log-checkpoint";

/// A version's record in the bundle: everything but its bytes, as it stood when the bundle's
/// period ended (a supersession after that is the next bundle's business).
///
/// It restates `VersionRecord` on purpose: this is the bundle format auditors keep for years
/// and verify with their own tools, so its fields (plain numbers and strings, where the parts
/// lie) stay fixed while the node's own record may change. `ArchivedVersion::of` is the one
/// place one becomes the other; `chain.rs` applies the same chain rule to both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedVersion {
    pub list: ListKind,
    pub volgnummer: i64,
    pub tijdstempel: DateTime<Utc>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub grace_seconds: i64,
    pub superseded_at: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    pub sha256: String,
    pub previous_sha256: Option<String>,
    pub heartbeat: bool,
    pub size_bytes: i64,
    /// Bundle paths of its parts; no body once retention purged it.
    pub header: String,
    pub body: Option<String>,
    /// The SHA-256 of its body, which a purged version's record still names (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    pub signature: String,
    /// When retention purged its bytes: the record, header and signature still chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<DateTime<Utc>>,
}

impl ArchivedVersion {
    pub fn of(record: &VersionRecord, covers_up_to: DateTime<Utc>) -> Self {
        let (list, n) = (record.list, record.volgnummer.get());
        let superseded = record.superseded_at.filter(|at| *at < covers_up_to);
        Self {
            list,
            volgnummer: n,
            tijdstempel: record.tijdstempel.instant(),
            valid_from: record.valid_from,
            expires_at: record.expires_at,
            grace_seconds: record.grace_seconds,
            superseded_at: superseded,
            grace_until: superseded.and(record.grace_until),
            sha256: record.sha256.clone(),
            previous_sha256: record.previous_sha256.clone(),
            heartbeat: record.heartbeat,
            size_bytes: record.size_bytes,
            header: version_path(list, n, "header"),
            body: record
                .purged_at
                .is_none()
                .then(|| format!("bodies/{}.gz", record.body_sha256)),
            body_sha256: Some(record.body_sha256.clone()),
            signature: version_path(list, n, "sig"),
            purged_at: record.purged_at,
        }
    }
}

/// `versions/<list>/<volgnummer, 10 digits>.<extension>`: sorts in Volgnummer order.
pub fn version_path(list: ListKind, volgnummer: i64, extension: &str) -> String {
    format!("versions/{list}/{volgnummer:010}.{extension}")
}
