//! Integrity rules 2, 4, 5, 6 and 8 of SPEC §4 for one change, against the working state of
//! all four lists (rules 1 and 3 hold once a submission is parsed). Run at submission and
//! again at approval; the publication checks the whole list a third time.

use std::collections::BTreeSet;

use crate::domain::{AnyEntry, ListEntries, ListKind, Rule, Violation, Violations};
use crate::domain::{EntryChange, Snapshot};

/// Referrers named in a refusal; the rest are counted.
const NAMED_REFERRERS: usize = 20;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// The change breaks an integrity rule (422).
    #[error("the change breaks the integrity rules: {0}")]
    Invalid(Violations),
    /// Rule 8: the entry is no longer at the version the change was based on (409).
    #[error(
        "{list} entry \"{key}\" is at version {current}, the change was based on version {expected}; \
         fetch the entry again and base the change on its current version"
    )]
    Stale {
        list: ListKind,
        key: String,
        expected: i64,
        current: i64,
    },
}

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
    let live = working.entries.keys().contains(&key);
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

fn live_keys(state: &Snapshot, list: ListKind) -> BTreeSet<&str> {
    state.list(list).state.entries.keys().into_iter().collect()
}

/// Rules 4 and 5 for a new or changed entry.
fn upsert_violations(entry: &AnyEntry, state: &Snapshot) -> Vec<Violation> {
    let hosts = live_keys(state, ListKind::Whitelist);
    let not_whitelisted = |path: String, host: &str| {
        (!hosts.contains(host)).then(|| {
            Violation::new(
                path,
                Rule::Reference,
                format!("host {host} is not on the Whitelist; add it to the Whitelist first"),
            )
        })
    };
    match entry {
        AnyEntry::Zorgaanbieder(za) => {
            let gnl = live_keys(state, ListKind::Gnl);
            let mut violations = Vec::new();
            for (i, gd) in za.gegevensdiensten().iter().enumerate() {
                let path = format!("$.entry.gegevensdiensten[{i}]");
                if !gnl.contains(gd.id().as_str()) {
                    violations.push(Violation::new(
                        format!("{path}.id"),
                        Rule::Reference,
                        format!(
                            "GegevensdienstId {} is not in the Gegevensdienstnamenlijst",
                            gd.id()
                        ),
                    ));
                }
                violations.extend(not_whitelisted(
                    format!("{path}.token_endpoint"),
                    gd.token_endpoint().host(),
                ));
                for (j, rol) in gd.systeemrollen().iter().enumerate() {
                    violations.extend(not_whitelisted(
                        format!("{path}.systeemrollen[{j}].resource_endpoint"),
                        rol.resource_endpoint.host(),
                    ));
                }
            }
            violations
        }
        AnyEntry::OAuthclient(client) => {
            not_whitelisted("$.entry.hostname".into(), client.hostname.as_str())
                .into_iter()
                .collect()
        }
        AnyEntry::GegevensdienstNaam(gd)
            if state.retired_gegevensdienst_ids.contains(gd.id.as_str()) =>
        {
            vec![Violation::new(
                "$.entry.id",
                Rule::Reuse,
                format!(
                    "GegevensdienstId {} was removed from the GNL before and is never reused; choose a new id",
                    gd.id
                ),
            )]
        }
        AnyEntry::GegevensdienstNaam(_) | AnyEntry::MedMijNode(_) => Vec::new(),
    }
}

/// Rules 4 and 6 for a removal: nothing may still refer to it, and the Whitelist never empties.
fn delete_violations(list: ListKind, key: &str, state: &Snapshot) -> Vec<Violation> {
    let referrers: Vec<String> = match list {
        ListKind::Gnl => zal(state)
            .filter(|za| {
                za.gegevensdiensten()
                    .iter()
                    .any(|gd| gd.id().as_str() == key)
            })
            .map(|za| format!("Zorgaanbieder {}", za.naam()))
            .collect(),
        ListKind::Whitelist => {
            let mut referrers: Vec<String> = zal(state)
                .filter(|za| {
                    za.gegevensdiensten().iter().any(|gd| {
                        gd.token_endpoint().host() == key
                            || gd
                                .systeemrollen()
                                .iter()
                                .any(|r| r.resource_endpoint.host() == key)
                    })
                })
                .map(|za| format!("Zorgaanbieder {}", za.naam()))
                .collect();
            if let ListEntries::Ocl(ocl) = &state.list(ListKind::Ocl).state.entries
                && ocl.get(key).is_some()
            {
                referrers.push(format!("OAuthclient {key}"));
            }
            referrers
        }
        ListKind::Zal | ListKind::Ocl => Vec::new(),
    };
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

fn zal(state: &Snapshot) -> impl Iterator<Item = &crate::domain::Zorgaanbieder> {
    match &state.list(ListKind::Zal).state.entries {
        ListEntries::Zal(zal) => zal.as_slice().iter(),
        _ => [].iter(),
    }
}
