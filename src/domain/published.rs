//! A published version of a list: its validity window and, once superseded, its grace
//! period (seed 003 rule 7b). Status is a function of the instant asked about.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{ListKind, Tijdstempel, Volgnummer};

/// Where a version stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Before its valid_from (only when asked about the past).
    NotYetValid,
    /// The list's newest version, within its validity window.
    Current,
    /// Superseded less than the grace period ago and not expired: still honoured.
    Grace,
    /// Past its validity, or superseded longer than the grace period ago.
    Expired,
}

impl VersionStatus {
    /// Whether nodes may still act on this version.
    pub fn is_honoured(self) -> bool {
        matches!(self, VersionStatus::Current | VersionStatus::Grace)
    }
}

/// The properties of one published version (everything but its bytes and signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub list: ListKind,
    pub volgnummer: Volgnummer,
    pub tijdstempel: Tijdstempel,
    pub valid_from: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub grace_seconds: i64,
    pub superseded_at: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    /// SHA-256 (hex) of the exact published bytes.
    pub sha256: String,
    pub previous_sha256: Option<String>,
    /// Published only to renew validity: same entries as the version before.
    pub heartbeat: bool,
    pub size_bytes: i64,
    /// SHA-256 of the part after the header: equal for versions with the same entries.
    #[serde(skip)]
    pub body_sha256: String,
    /// When retention purged its bytes (its record stays, so the chain still verifies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<DateTime<Utc>>,
}

impl VersionRecord {
    pub fn status_at(&self, t: DateTime<Utc>) -> VersionStatus {
        if t < self.valid_from {
            return VersionStatus::NotYetValid;
        }
        // Expiry wins over grace: an expired list is never honoured.
        if t >= self.expires_at {
            return VersionStatus::Expired;
        }
        match (self.superseded_at, self.grace_until) {
            (Some(superseded), _) if t < superseded => VersionStatus::Current,
            (Some(_), Some(grace_until)) if t < grace_until => VersionStatus::Grace,
            (Some(_), _) => VersionStatus::Expired,
            (None, _) => VersionStatus::Current,
        }
    }

    /// The record as it is once a newer version is published at `at`.
    pub fn superseded(mut self, at: DateTime<Utc>) -> Self {
        self.superseded_at = Some(at);
        self.grace_until = Some(at + Duration::seconds(self.grace_seconds));
        self
    }
}

/// Of the versions honoured at `t`, the one nodes were served then (point in time, issue 14):
/// the current one, or — when none was current — the newest still in its grace period.
pub fn served_at(
    honoured: &[VersionRecord],
    t: DateTime<Utc>,
) -> Option<(&VersionRecord, VersionStatus)> {
    let newest = |status| {
        honoured
            .iter()
            .filter(|v| v.status_at(t) == status)
            .max_by_key(|v| v.volgnummer)
            .map(|v| (v, status))
    };
    newest(VersionStatus::Current).or_else(|| newest(VersionStatus::Grace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> VersionRecord {
        let t0 = DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        VersionRecord {
            list: ListKind::Zal,
            volgnummer: Volgnummer::FIRST,
            tijdstempel: Tijdstempel::new(t0),
            valid_from: t0,
            expires_at: t0 + Duration::days(7),
            grace_seconds: 3600,
            superseded_at: None,
            grace_until: None,
            sha256: String::new(),
            previous_sha256: None,
            heartbeat: false,
            size_bytes: 0,
            body_sha256: String::new(),
            purged_at: None,
        }
    }

    #[test]
    fn status_through_a_versions_life() {
        let r = record();
        let t0 = r.valid_from;
        assert_eq!(
            r.status_at(t0 - Duration::seconds(1)),
            VersionStatus::NotYetValid
        );
        assert_eq!(r.status_at(t0), VersionStatus::Current);
        assert_eq!(
            r.status_at(t0 + Duration::days(7) - Duration::microseconds(1)),
            VersionStatus::Current
        );
        assert_eq!(r.status_at(t0 + Duration::days(7)), VersionStatus::Expired);

        let superseded_at = t0 + Duration::days(2);
        let s = r.superseded(superseded_at);
        assert_eq!(
            s.status_at(superseded_at - Duration::microseconds(1)),
            VersionStatus::Current
        );
        assert_eq!(s.status_at(superseded_at), VersionStatus::Grace);
        assert_eq!(
            s.status_at(superseded_at + Duration::seconds(3599)),
            VersionStatus::Grace
        );
        assert_eq!(
            s.status_at(superseded_at + Duration::seconds(3600)),
            VersionStatus::Expired
        );
        assert!(VersionStatus::Grace.is_honoured() && !VersionStatus::Expired.is_honoured());
    }

    #[test]
    fn expiry_ends_grace() {
        let r = record();
        let s = r.clone().superseded(r.expires_at - Duration::seconds(60));
        assert_eq!(
            s.status_at(r.expires_at - Duration::seconds(1)),
            VersionStatus::Grace
        );
        assert_eq!(s.status_at(r.expires_at), VersionStatus::Expired);
    }
}

/// One line of the version index (`/lists/{list}/versions`): a version's properties and its
/// status at the moment the index was made. The node writes it, consumers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedVersion {
    #[serde(flatten)]
    pub record: VersionRecord,
    pub status: VersionStatus,
    /// The version's leaf in the transparency log (issue 26), once the node has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
}
