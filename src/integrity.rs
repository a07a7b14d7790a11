//! The integrity rules of SPEC §4 that concern whole lists and the references between them,
//! run before anything is published (the node never publishes an invalid list). Rules 1–3
//! (facets, uniqueness, structure) hold by construction of the domain types and are checked
//! again on the rendered bytes by `xml::check_rendered`.

use std::collections::HashSet;

use crate::domain::Snapshot;
use crate::domain::{ListEntries, ListKind, Rule, Violation, Violations};

/// What a publication of one list is checked against.
pub struct PublicationCheck<'a> {
    pub list: ListKind,
    pub snapshot: &'a Snapshot,
    /// The entries of the list's current published version, if any.
    pub previous: Option<&'a ListEntries>,
    pub mass_change_threshold_percent: u8,
    pub confirm_mass_change: bool,
}

fn entries(snapshot: &Snapshot, list: ListKind) -> &ListEntries {
    &snapshot.list(list).state.entries
}

fn keys(entries: &ListEntries) -> HashSet<&str> {
    entries.keys().into_iter().collect()
}

/// Rule 4 over whole lists, for a publication of `publishing`: every reference its entries
/// hold, and every reference to its entries, resolves in the snapshot.
fn dangling_references(snapshot: &Snapshot, publishing: ListKind) -> Vec<Violation> {
    let gnl_ids = keys(entries(snapshot, ListKind::Gnl));
    let hosts = keys(entries(snapshot, ListKind::Whitelist));
    let mut violations = Vec::new();
    for source in [ListKind::Zal, ListKind::Ocl] {
        for (referrer, reference) in entries(snapshot, source).references() {
            let known = match reference.list {
                ListKind::Gnl => &gnl_ids,
                _ => &hosts,
            };
            if (source == publishing || reference.list == publishing)
                && !known.contains(reference.key)
            {
                violations.push(Violation::new(
                    reference.list_path(&referrer),
                    Rule::Reference,
                    reference.missing(),
                ));
            }
        }
    }
    violations
}

/// Checks a publication of `check.list` against rules 4–7.
pub fn check_publication(check: &PublicationCheck<'_>) -> Result<(), Violations> {
    let snapshot = check.snapshot;
    let mut violations = dangling_references(snapshot, check.list);
    if check.list == ListKind::Gnl {
        for id in keys(entries(snapshot, ListKind::Gnl)) {
            if snapshot.retired_gegevensdienst_ids.contains(id) {
                violations.push(Violation::new(
                    format!("Gegevensdienst[{id}]/GegevensdienstId"),
                    Rule::Reuse,
                    format!("GegevensdienstId {id} was removed from the GNL before and may not be reused"),
                ));
            }
        }
    }
    let new = entries(snapshot, check.list);
    if check.list == ListKind::Whitelist && new.is_empty() {
        violations.push(Violation::new(
            "MedMijNodes",
            Rule::NotEmpty,
            "the Whitelist is never published empty",
        ));
    }
    if let Some(previous) = check.previous
        && !check.confirm_mass_change
    {
        let kept = keys(new);
        let before = keys(previous);
        let removed = before.iter().filter(|k| !kept.contains(*k)).count();
        // removed / before > threshold%, in integers.
        if removed * 100 > before.len() * usize::from(check.mass_change_threshold_percent) {
            violations.push(Violation::new(
                check.list.root_element(),
                Rule::MassChange,
                format!(
                    "this publication removes {removed} of {} entries, more than {}%: confirm the mass change to publish it",
                    before.len(),
                    check.mass_change_threshold_percent
                ),
            ));
        }
    }
    match Violations::from_vec(violations) {
        Some(v) => Err(v),
        None => Ok(()),
    }
}
