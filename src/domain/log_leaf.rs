//! A leaf of the transparency log (issue 26): one per published version, heartbeats
//! included, appended in publication order in the transaction that stores the version.
//!
//! The leaf is a small canonical text, defined here once and versioned by its first line.
//! Version 1, every line ended by one `\n`, no other whitespace:
//!
//! ```text
//! stelselnode-log-leaf/v1
//! list zal
//! volgnummer 17
//! sha256 <SHA-256 of the served bytes, 64 lowercase hex>
//! valid-from 2026-12-04T16:41:40Z
//! expires-at 2026-12-11T16:41:40Z
//! previous-sha256 <64 lowercase hex, or "none" for a list's first version>
//! ```
//!
//! Times are RFC 3339 in UTC with a `Z`, with a fraction only where the instant has one. The
//! Merkle tree hashes a leaf as RFC 6962 does: SHA-256(0x00 ‖ leaf). A leaf is made once, from
//! the record being published, and kept as bytes: it is never made again from a record read
//! back, so a change in how records are stored cannot change the log.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{ListKind, VersionRecord, Volgnummer};

/// The first line of every version 1 leaf.
pub const LOG_LEAF_FORMAT: &str = "stelselnode-log-leaf/v1";

/// A leaf's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf(Vec<u8>);

impl LogLeaf {
    /// The leaf of a version being published.
    pub fn of(record: &VersionRecord) -> Self {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let text = format!(
            "{LOG_LEAF_FORMAT}\nlist {}\nvolgnummer {}\nsha256 {}\nvalid-from {}\nexpires-at {}\nprevious-sha256 {}\n",
            record.list,
            record.volgnummer,
            record.sha256,
            time(&record.valid_from),
            time(&record.expires_at),
            record.previous_sha256.as_deref().unwrap_or("none"),
        );
        Self(text.into_bytes())
    }

    /// A leaf as the log stores it.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A leaf with its place in the log and the version it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// 0 for the first version ever published.
    pub index: u64,
    pub list: ListKind,
    pub volgnummer: Volgnummer,
    pub leaf: LogLeaf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tijdstempel;

    fn record(previous: Option<&str>) -> VersionRecord {
        let at = DateTime::parse_from_rfc3339("2026-12-04T16:41:40Z")
            .unwrap()
            .to_utc();
        VersionRecord {
            list: ListKind::Zal,
            volgnummer: Volgnummer::new(17).unwrap(),
            tijdstempel: Tijdstempel::new(at),
            valid_from: at,
            expires_at: at + chrono::Duration::days(7),
            grace_seconds: 3600,
            superseded_at: None,
            grace_until: None,
            sha256: "ab".repeat(32),
            previous_sha256: previous.map(str::to_owned),
            heartbeat: false,
            size_bytes: 1,
            body_sha256: String::new(),
            purged_at: None,
        }
    }

    #[test]
    fn a_leaf_is_the_documented_text() {
        let leaf = LogLeaf::of(&record(Some(&"cd".repeat(32))));
        let expected = format!(
            "stelselnode-log-leaf/v1\nlist zal\nvolgnummer 17\nsha256 {}\n\
             valid-from 2026-12-04T16:41:40Z\nexpires-at 2026-12-11T16:41:40Z\n\
             previous-sha256 {}\n",
            "ab".repeat(32),
            "cd".repeat(32)
        );
        assert_eq!(
            String::from_utf8(leaf.as_bytes().to_vec()).unwrap(),
            expected
        );
        let first = LogLeaf::of(&record(None));
        assert!(first.as_bytes().ends_with(b"\nprevious-sha256 none\n"));
    }
}
