//! The integrity rules of SPEC §4 that concern whole lists and the references between them,
//! run before anything is published (the node never publishes an invalid list). Rules 1–3
//! (facets, uniqueness, structure) hold by construction of the domain types and are checked
//! again on the rendered bytes by `xml::check_rendered`.
//!
//! The invariant rule 4 protects is about what nodes hold: after every publication the
//! *current published* versions of the four lists are consistent with each other. So a
//! publication is checked against a view in which the lists being published have their
//! working state and every other list its current published version. When a reference only
//! resolves with another list's unpublished working state (a new GegevensdienstId, a new
//! Whitelist host, or a removal the referring list has not published yet), that list is
//! published together with it, in one transaction (`plan_publication`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::domain::{EntrySet, ListEntries, ListKind, Rule, Snapshot, Violation, Violations};

/// The lists that refer to others, and the lists they refer to.
const REFERRING: [ListKind; 2] = [ListKind::Zal, ListKind::Ocl];

/// What a publication is checked against.
pub struct PublicationCheck<'a> {
    /// The working state of every list.
    pub snapshot: &'a Snapshot,
    /// The entries of each list's current published version; a list that was never published
    /// by this node is absent (nodes hold its imported version, which is its working state
    /// until the first publication).
    pub published: &'a BTreeMap<ListKind, &'a ListEntries>,
    pub mass_change_threshold_percent: u8,
    pub confirm_mass_change: bool,
}

impl PublicationCheck<'_> {
    /// The entries nodes would hold of `list` if `publishing` were published now.
    fn view(&self, list: ListKind, publishing: &BTreeSet<ListKind>) -> &ListEntries {
        match (publishing.contains(&list), self.published.get(&list)) {
            (false, Some(published)) => published,
            _ => &self.snapshot.list(list).state.entries,
        }
    }
}

fn keys(entries: &ListEntries) -> HashSet<&str> {
    entries.keys().into_iter().collect()
}

/// A reference that does not resolve: from an entry of `from` to a missing entry of `to`.
struct Dangling {
    from: ListKind,
    to: ListKind,
    violation: Violation,
}

/// Rule 4 over whole lists: every reference of `lists` resolves, for references from or to
/// a list in `touching`.
fn dangling_references<'a>(
    lists: impl Fn(ListKind) -> &'a ListEntries,
    touching: &BTreeSet<ListKind>,
) -> Vec<Dangling> {
    let gnl_ids = keys(lists(ListKind::Gnl));
    let hosts = keys(lists(ListKind::Whitelist));
    let mut dangling = Vec::new();
    for from in REFERRING {
        for (referrer, reference) in lists(from).references() {
            let known = match reference.list {
                ListKind::Gnl => &gnl_ids,
                _ => &hosts,
            };
            if (touching.contains(&from) || touching.contains(&reference.list))
                && !known.contains(reference.key)
            {
                dangling.push(Dangling {
                    from,
                    to: reference.list,
                    violation: Violation::new(
                        reference.list_path(&referrer),
                        Rule::Reference,
                        reference.missing(),
                    ),
                });
            }
        }
    }
    dangling
}

/// Rule 4 over four lists as nodes hold them: every reference that does not resolve.
pub fn inconsistencies(lists: &BTreeMap<ListKind, ListEntries>) -> Vec<Violation> {
    let empty = ListEntries::Gnl(EntrySet::empty());
    dangling_references(
        |list| lists.get(&list).unwrap_or(&empty),
        &ListKind::ALL.into_iter().collect(),
    )
    .into_iter()
    .map(|d| d.violation)
    .collect()
}

/// Which lists a publication of `list` must include so that the published versions stay
/// consistent: `list`, and every list whose working state a reference of the result needs.
/// Refused with the violations when no such set passes rules 4–7.
pub fn plan_publication(
    list: ListKind,
    check: &PublicationCheck<'_>,
) -> Result<BTreeSet<ListKind>, Violations> {
    let mut publishing = BTreeSet::from([list]);
    loop {
        let dangling = dangling_references(|l| check.view(l, &publishing), &publishing);
        // A dangling reference whose other end is published as it stands: that list's
        // working state may resolve it.
        let needed: BTreeSet<ListKind> = dangling
            .iter()
            .flat_map(|d| [d.from, d.to])
            .filter(|l| !publishing.contains(l) && check.published.contains_key(l))
            .collect();
        if needed.is_empty() {
            let mut violations: Vec<Violation> =
                dangling.into_iter().map(|d| d.violation).collect();
            for &list in &publishing {
                violations.extend(list_violations(list, check));
            }
            return match Violations::from_vec(violations) {
                Some(v) => Err(v),
                None => Ok(publishing),
            };
        }
        publishing.extend(needed);
    }
}

/// Rules 5, 6 and 7 for one list published from its working state.
fn list_violations(list: ListKind, check: &PublicationCheck<'_>) -> Vec<Violation> {
    let snapshot = check.snapshot;
    let new = &snapshot.list(list).state.entries;
    let mut violations = Vec::new();
    if list == ListKind::Gnl {
        for id in keys(new) {
            if snapshot.retired_gegevensdienst_ids.contains(id) {
                violations.push(Violation::new(
                    format!("Gegevensdienst[{id}]/GegevensdienstId"),
                    Rule::Reuse,
                    format!("GegevensdienstId {id} was removed from the GNL before and may not be reused"),
                ));
            }
        }
    }
    if list == ListKind::Whitelist && new.is_empty() {
        violations.push(Violation::new(
            "MedMijNodes",
            Rule::NotEmpty,
            "the Whitelist is never published empty",
        ));
    }
    if let Some(previous) = check.published.get(&list)
        && !check.confirm_mass_change
    {
        let kept = keys(new);
        let before = keys(previous);
        let removed = before.iter().filter(|k| !kept.contains(*k)).count();
        // removed / before > threshold%, in integers.
        if removed * 100 > before.len() * usize::from(check.mass_change_threshold_percent) {
            violations.push(Violation::new(
                list.root_element(),
                Rule::MassChange,
                format!(
                    "this publication removes {removed} of {} entries, more than {}%: confirm the mass change to publish it",
                    before.len(),
                    check.mass_change_threshold_percent
                ),
            ));
        }
    }
    violations
}
