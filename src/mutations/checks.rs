//! Integrity rules 2, 4, 5, 6 and 8 of SPEC §4 for one change, against the working state of
//! all four lists (rules 1 and 3 hold once a submission is parsed). Run at submission and
//! again at approval; the publication checks the whole list a third time.

use crate::domain::{AnyEntry, CheckError, ListKind, Rule, Violation, Violations};
use crate::domain::{EntryChange, Snapshot};

/// Referrers named in a refusal; the rest are counted.
const NAMED_REFERRERS: usize = 20;

fn refuse(path: &str, rule: Rule, message: String) -> CheckError {
    CheckError::Invalid(Violations::one(Violation::new(path, rule, message)))
}

/// When a change is checked: at approval the entry may have moved on since submission,
/// which is a conflict (409) whatever the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Submission,
    Approval,
}

/// Checks one change against `state`.
pub fn check_change(
    change: &EntryChange,
    state: &Snapshot,
    stage: Stage,
) -> Result<(), CheckError> {
    let list = change.list();
    let key = change.key();
    let working = &state.list(list).state;
    let current = working.version_of(key);
    let live = working.entries.contains_key(key);
    if change.entry().is_none() && !live {
        return Err(refuse(
            "$.key",
            Rule::Reference,
            format!("{list} has no entry \"{key}\" to delete"),
        ));
    }
    if change.base_version() != current {
        if stage == Stage::Submission && change.base_version() == 0 && live {
            return Err(refuse(
                "$.entry",
                Rule::Unique,
                format!(
                    "{list} already has an entry \"{key}\" (version {current}); to replace it, base the change on version {current}"
                ),
            ));
        }
        return Err(CheckError::Stale {
            list,
            key: key.to_owned(),
            expected: change.base_version(),
            current,
        });
    }
    let violations = match change.entry() {
        Some(entry) => upsert_violations(entry, state),
        None => delete_violations(list, key, state),
    };
    match Violations::from_vec(violations) {
        Some(v) => Err(CheckError::Invalid(v)),
        None => Ok(()),
    }
}

/// Rules 4 and 5 for a new or changed entry.
fn upsert_violations(entry: &AnyEntry, state: &Snapshot) -> Vec<Violation> {
    // Lookups by key (binary searches), not sets of every key: this runs for every
    // submission, against lists of thousands of entries.
    let mut violations: Vec<Violation> = entry
        .references()
        .into_iter()
        .filter(|r| !state.list(r.list).state.entries.contains_key(r.key))
        .map(|r| {
            let advice = match r.list {
                ListKind::Gnl => "",
                _ => "; add it to the Whitelist first",
            };
            Violation::new(
                r.json_path(),
                Rule::Reference,
                format!("{}{advice}", r.missing()),
            )
        })
        .collect();
    if let AnyEntry::GegevensdienstNaam(gd) = entry
        && state.retired_gegevensdienst_ids.contains(gd.id.as_str())
    {
        violations.push(Violation::new(
            "$.entry.id",
            Rule::Reuse,
            format!(
                "GegevensdienstId {} was removed from the GNL before and is never reused; choose a new id",
                gd.id
            ),
        ));
    }
    violations
}

/// The entries that refer to `key` of `list`, named as staff know them:
/// `Zorgaanbieder radiologencentraalflevoland@medmij`, `OAuthclient host`.
pub fn referrers(state: &Snapshot, list: ListKind, key: &str) -> Vec<String> {
    // Only GegevensdienstIds and Whitelist hosts are referred to: the other lists need not
    // gather every reference of the ZAL (some 10 ms at 10 000 Zorgaanbieders).
    if !matches!(list, ListKind::Gnl | ListKind::Whitelist) {
        return Vec::new();
    }
    let mut referrers: Vec<String> = [ListKind::Zal, ListKind::Ocl]
        .into_iter()
        .flat_map(|source| state.list(source).state.entries.references())
        .filter(|(_, r)| r.list == list && r.key == key)
        .map(|(referrer, _)| format!("{} {}", referrer.element, referrer.key))
        .collect();
    // An entry's references are consecutive: name it once.
    referrers.dedup();
    referrers
}

/// Rules 4 and 6 for a removal: nothing may still refer to it, and the Whitelist never empties.
fn delete_violations(list: ListKind, key: &str, state: &Snapshot) -> Vec<Violation> {
    let referrers = referrers(state, list, key);
    let mut violations = Vec::new();
    if !referrers.is_empty() {
        let named = referrers
            .iter()
            .take(NAMED_REFERRERS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = match referrers.len().saturating_sub(NAMED_REFERRERS) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        violations.push(Violation::new(
            "$.key",
            Rule::Reference,
            format!("{key} is still referred to by {named}{more}; change or remove those first"),
        ));
    }
    if list == ListKind::Whitelist && state.list(list).state.entries.len() == 1 {
        violations.push(Violation::new(
            "$.key",
            Rule::NotEmpty,
            format!("{key} is the last host on the Whitelist, which is never published empty"),
        ));
    }
    violations
}
