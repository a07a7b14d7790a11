//! The chain rule of a list's versions (SPEC §5): Volgnummers rise by exactly one, each
//! version names its predecessor's SHA-256, and validity windows follow each other without a
//! gap. Stated once, for both records that have those fields: a bundle's `ArchivedVersion`
//! (the offline verifier) and the database's `VersionRecord` (the daily archive check).
//!
//! One gap is allowed, and only where a restore record (`RestoreRecord`, issue 23) states it:
//! after a restore the list continues past every Volgnummer that may have been published
//! before the loss, naming the last recovered version as its predecessor.
//!
//! Volgnummers come from files nobody vouches for yet, so every step is checked arithmetic
//! and gaps are reported as ranges (an edited record once made this collect billions of
//! numbers).

use chrono::{DateTime, Utc};

use crate::domain::{ListKind, VersionRecord};
use crate::storage::RestoreRecord;

/// What the chain rule looks at in a version record.
pub trait ChainLink {
    fn volgnummer(&self) -> i64;
    fn sha256(&self) -> &str;
    fn previous_sha256(&self) -> Option<&str>;
    fn valid_from(&self) -> DateTime<Utc>;
    fn expires_at(&self) -> DateTime<Utc>;
}

impl ChainLink for VersionRecord {
    fn volgnummer(&self) -> i64 {
        self.volgnummer.get()
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
    fn previous_sha256(&self) -> Option<&str> {
        self.previous_sha256.as_deref()
    }
    fn valid_from(&self) -> DateTime<Utc> {
        self.valid_from
    }
    fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

impl ChainLink for super::bundle::ArchivedVersion {
    fn volgnummer(&self) -> i64 {
        self.volgnummer
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
    fn previous_sha256(&self) -> Option<&str> {
        self.previous_sha256.as_deref()
    }
    fn valid_from(&self) -> DateTime<Utc> {
        self.valid_from
    }
    fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// The Volgnummers from `first` to `last` (both included), in words.
fn missing(list: ListKind, first: i64, last: i64) -> String {
    match first == last {
        true => format!("{list}: Volgnummer {first} is missing"),
        false => format!("{list}: Volgnummers {first} to {last} are missing"),
    }
}

/// Whether one of `restores` allows `list` to continue at `next` after (`n`, `sha256`).
fn restored<V: ChainLink>(
    restores: &[RestoreRecord],
    list: ListKind,
    n: i64,
    sha256: &str,
    next: &V,
) -> bool {
    restores
        .iter()
        .any(|r| r.allows(list, n, sha256, next.volgnummer(), next.previous_sha256()))
}

/// Every break of the chain in `versions` (sorted by Volgnummer), and towards `after`, the
/// Volgnummer and SHA-256 of the version they must follow; the gaps `restores` state are no
/// break.
pub fn chain_problems<V: ChainLink>(
    list: ListKind,
    versions: &[V],
    after: Option<(i64, &str)>,
    restores: &[RestoreRecord],
) -> Vec<String> {
    let mut problems = Vec::new();
    if let (Some(first), Some((last_n, last_sha))) = (versions.first(), after) {
        if restored(restores, list, last_n, last_sha, first) {
            // The restore's gap, exactly as recorded.
        } else if last_n.checked_add(1) != Some(first.volgnummer()) {
            problems.push(format!(
                "{list}: the bundle starts at Volgnummer {}, the last bundle seen ended at {last_n}",
                first.volgnummer()
            ));
        } else if first.previous_sha256() != Some(last_sha) {
            problems.push(format!(
                "{list} version {}: does not name the last bundle's version as its predecessor",
                first.volgnummer()
            ));
        }
    }
    for pair in versions.windows(2) {
        let [a, b] = pair else { continue };
        let (n, next) = (a.volgnummer(), b.volgnummer());
        if n == next {
            problems.push(format!("{list}: Volgnummer {n} appears more than once"));
            continue;
        }
        if restored(restores, list, n, a.sha256(), b) {
            // A restore's gap: the versions that covered it may be lost, so validity is not
            // compared across it.
            continue;
        }
        if n.checked_add(1) != Some(next) {
            // Sorted and distinct: next > n, so n + 1 ≤ next - 1 do not overflow.
            problems.push(missing(list, n + 1, next - 1));
            continue;
        }
        if b.previous_sha256() != Some(a.sha256()) {
            problems.push(format!(
                "{list} version {next}: does not name version {n} as its predecessor"
            ));
        }
        if b.valid_from() < a.valid_from() {
            problems.push(format!(
                "{list} version {next}: valid before the version it follows"
            ));
        }
        if b.valid_from() > a.expires_at() {
            problems.push(format!(
                "{list}: no version was valid between {} and {}",
                a.expires_at(),
                b.valid_from()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Link(i64, &'static str, Option<&'static str>);

    impl ChainLink for Link {
        fn volgnummer(&self) -> i64 {
            self.0
        }
        fn sha256(&self) -> &str {
            self.1
        }
        fn previous_sha256(&self) -> Option<&str> {
            self.2
        }
        fn valid_from(&self) -> DateTime<Utc> {
            DateTime::UNIX_EPOCH
        }
        fn expires_at(&self) -> DateTime<Utc> {
            DateTime::UNIX_EPOCH
        }
    }

    #[test]
    fn gaps_are_ranges_and_extreme_volgnummers_do_not_overflow() {
        let list = ListKind::Gnl;
        let chain = [
            Link(1, "a", None),
            Link(2, "b", Some("a")),
            Link(2, "b", Some("a")),
            Link(200_000_000, "c", Some("b")),
            Link(i64::MAX, "d", Some("c")),
        ];
        assert_eq!(
            chain_problems(list, &chain, Some((i64::MAX, "x")), &[]),
            [
                format!(
                    "gnl: the bundle starts at Volgnummer 1, the last bundle seen ended at {}",
                    i64::MAX
                ),
                "gnl: Volgnummer 2 appears more than once".to_owned(),
                "gnl: Volgnummers 3 to 199999999 are missing".to_owned(),
                format!("gnl: Volgnummers 200000001 to {} are missing", i64::MAX - 1),
            ]
        );
        let single = [Link(4, "a", None), Link(6, "b", Some("a"))];
        assert_eq!(
            chain_problems(list, &single, None, &[]),
            ["gnl: Volgnummer 5 is missing"]
        );
        let whole = [Link(i64::MIN, "a", None), Link(i64::MAX, "b", Some("a"))];
        assert_eq!(chain_problems(list, &whole, None, &[]).len(), 1);
    }

    #[test]
    fn only_the_gap_a_restore_records_is_allowed() {
        let list = ListKind::Zal;
        let record = RestoreRecord {
            list,
            at: DateTime::UNIX_EPOCH,
            after_volgnummer: 2,
            after_sha256: Some("b".into()),
            next_volgnummer: 1003,
            recovered_up_to: DateTime::UNIX_EPOCH,
        };
        let restores = [record.clone()];
        let jump = [Link(2, "b", Some("a")), Link(1003, "c", Some("b"))];
        assert_eq!(chain_problems(list, &jump, None, &restores), [""; 0]);
        assert_eq!(
            chain_problems(list, &jump[1..], Some((2, "b")), &restores),
            [""; 0]
        );
        // Another target, another predecessor, another list, a record of another list: gaps.
        let elsewhere = [Link(2, "b", Some("a")), Link(1004, "c", Some("b"))];
        let forked = [Link(2, "b", Some("a")), Link(1003, "c", Some("x"))];
        for chain in [&elsewhere, &forked] {
            assert_eq!(chain_problems(list, chain, None, &restores).len(), 1);
        }
        assert_eq!(
            chain_problems(ListKind::Ocl, &jump, None, &restores).len(),
            1
        );
        assert_eq!(chain_problems(list, &jump, None, &[]).len(), 1);
    }
}
