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

/// Rule 4 for the ZAL: every GegevensdienstId is in the GNL, every token and resource
/// endpoint host is on the Whitelist.
pub fn zal_references(
    zal: &ListEntries,
    gnl_ids: &HashSet<&str>,
    hosts: &HashSet<&str>,
) -> Vec<Violation> {
    let ListEntries::Zal(zal) = zal else {
        return Vec::new();
    };
    let mut violations = Vec::new();
    for za in zal.as_slice() {
        for gd in za.gegevensdiensten() {
            let path = format!("Zorgaanbieder[{}]/Gegevensdienst[{}]", za.naam(), gd.id());
            if !gnl_ids.contains(gd.id().as_str()) {
                violations.push(Violation::new(
                    format!("{path}/GegevensdienstId"),
                    Rule::Reference,
                    format!(
                        "GegevensdienstId {} is not in the Gegevensdienstnamenlijst",
                        gd.id()
                    ),
                ));
            }
            let endpoints = std::iter::once(("TokenEndpointuri", gd.token_endpoint().host()))
                .chain(
                    gd.systeemrollen()
                        .iter()
                        .map(|r| ("ResourceEndpointuri", r.resource_endpoint.host())),
                );
            for (element, host) in endpoints {
                if !hosts.contains(host) {
                    violations.push(Violation::new(
                        format!("{path}/{element}"),
                        Rule::Reference,
                        format!("host {host} is not on the Whitelist"),
                    ));
                }
            }
        }
    }
    violations
}

/// Rule 4 for the OCL: every OAuthclient's hostname is on the Whitelist.
pub fn ocl_references(ocl: &ListEntries, hosts: &HashSet<&str>) -> Vec<Violation> {
    let ListEntries::Ocl(ocl) = ocl else {
        return Vec::new();
    };
    ocl.as_slice()
        .iter()
        .filter(|c| !hosts.contains(c.hostname.as_str()))
        .map(|c| {
            Violation::new(
                format!("OAuthclient[{}]/Hostname", c.hostname),
                Rule::Reference,
                format!("host {} is not on the Whitelist", c.hostname),
            )
        })
        .collect()
}

/// Checks a publication of `check.list` against rules 4–7.
pub fn check_publication(check: &PublicationCheck<'_>) -> Result<(), Violations> {
    let snapshot = check.snapshot;
    let gnl_ids = keys(entries(snapshot, ListKind::Gnl));
    let hosts = keys(entries(snapshot, ListKind::Whitelist));
    let mut violations = match check.list {
        ListKind::Zal => zal_references(entries(snapshot, ListKind::Zal), &gnl_ids, &hosts),
        ListKind::Ocl => ocl_references(entries(snapshot, ListKind::Ocl), &hosts),
        // Publishing the lists others refer to must not leave a reference dangling.
        ListKind::Gnl => zal_references(entries(snapshot, ListKind::Zal), &gnl_ids, &hosts)
            .into_iter()
            .filter(|v| v.path.ends_with("/GegevensdienstId"))
            .collect(),
        ListKind::Whitelist => {
            let mut v: Vec<Violation> =
                zal_references(entries(snapshot, ListKind::Zal), &gnl_ids, &hosts)
                    .into_iter()
                    .filter(|v| !v.path.ends_with("/GegevensdienstId"))
                    .collect();
            v.extend(ocl_references(entries(snapshot, ListKind::Ocl), &hosts));
            v
        }
    };
    if check.list == ListKind::Gnl {
        for id in &gnl_ids {
            if snapshot.retired_gegevensdienst_ids.contains(*id) {
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
