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

/// What a leaf says, parsed: the fields of a version it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafContent {
    pub list: ListKind,
    pub volgnummer: Volgnummer,
    /// 64 lowercase hex.
    pub sha256: String,
    pub valid_from: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub previous_sha256: Option<String>,
}

/// Why bytes are not a version 1 leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {LOG_LEAF_FORMAT} leaf: {0}")]
pub struct NotALeaf(&'static str);

impl LeafContent {
    /// What the leaf of a version being published says.
    pub fn of(record: &VersionRecord) -> Self {
        Self {
            list: record.list,
            volgnummer: record.volgnummer,
            sha256: record.sha256.clone(),
            valid_from: record.valid_from,
            expires_at: record.expires_at,
            previous_sha256: record.previous_sha256.clone(),
        }
    }

    /// The canonical leaf.
    pub fn leaf(&self) -> LogLeaf {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let text = format!(
            "{LOG_LEAF_FORMAT}\nlist {}\nvolgnummer {}\nsha256 {}\nvalid-from {}\nexpires-at {}\nprevious-sha256 {}\n",
            self.list,
            self.volgnummer,
            self.sha256,
            time(&self.valid_from),
            time(&self.expires_at),
            self.previous_sha256.as_deref().unwrap_or("none"),
        );
        LogLeaf(text.into_bytes())
    }
}

impl LogLeaf {
    /// The leaf of a version being published.
    pub fn of(record: &VersionRecord) -> Self {
        LeafContent::of(record).leaf()
    }

    /// A leaf as the log stores it.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// What the leaf says, if it is a canonical version 1 leaf (bytes from elsewhere — an
    /// archive bundle — are parsed strictly: only the exact text `leaf()` makes is one).
    pub fn content(&self) -> Result<LeafContent, NotALeaf> {
        let text = std::str::from_utf8(&self.0).map_err(|_| NotALeaf("not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(LOG_LEAF_FORMAT) {
            return Err(NotALeaf("its first line"));
        }
        let mut field = |name: &'static str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .ok_or(NotALeaf(name))
        };
        let instant = |value: &str, name| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.to_utc())
                .map_err(|_| NotALeaf(name))
        };
        let content = LeafContent {
            list: field("list")?.parse().map_err(|_| NotALeaf("list"))?,
            volgnummer: field("volgnummer")?
                .parse()
                .ok()
                .and_then(|n| Volgnummer::new(n).ok())
                .ok_or(NotALeaf("volgnummer"))?,
            sha256: field("sha256")?.to_owned(),
            valid_from: instant(field("valid-from")?, "valid-from")?,
            expires_at: instant(field("expires-at")?, "expires-at")?,
            previous_sha256: match field("previous-sha256")? {
                "none" => None,
                sha256 => Some(sha256.to_owned()),
            },
        };
        let is_sha256 =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_sha256(&content.sha256) || !content.previous_sha256.as_deref().is_none_or(is_sha256)
        {
            return Err(NotALeaf("a SHA-256"));
        }
        match content.leaf() == *self {
            true => Ok(content),
            false => Err(NotALeaf("not in its canonical form")),
        }
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

    #[test]
    fn a_leaf_parses_back_to_what_it_says_and_only_in_its_canonical_form() {
        for previous in [None, Some("cd".repeat(32))] {
            let record = record(previous.as_deref());
            assert_eq!(LogLeaf::of(&record).content(), Ok(LeafContent::of(&record)));
        }
        let text = String::from_utf8(LogLeaf::of(&record(None)).as_bytes().to_vec()).unwrap();
        for (edit, from, to) in [
            ("another format", "/v1", "/v2"),
            ("a list unknown", "list zal", "list abc"),
            ("Volgnummer 0", "volgnummer 17", "volgnummer 0"),
            ("a leading zero", "volgnummer 17", "volgnummer 017"),
            ("uppercase hex", "sha256 ab", "sha256 AB"),
            ("a short SHA-256", "sha256 abab", "sha256 ab"),
            ("another time form", "16:41:40Z", "16:41:40+00:00"),
            ("a line missing", "previous-sha256 none\n", ""),
            ("a line added", "none\n", "none\nextra\n"),
            ("CRLF", "\nlist", "\r\nlist"),
            ("no final newline", "none\n", "none"),
        ] {
            assert!(text.contains(from), "{edit}");
            let edited = LogLeaf::from_stored(text.replacen(from, to, 1).into_bytes());
            assert!(edited.content().is_err(), "{edit} was accepted");
        }
    }
}
