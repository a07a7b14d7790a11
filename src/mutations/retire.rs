//! Release clean-up (seed 001, "Actualiseren bij publicatie nieuwe release"): when an
//! interface version is retired, every Gegevensdienst and OAuthclient tied to it leaves the
//! lists — as ordinary mutations, reviewed by a second beheer identity and checked like any
//! other.

use crate::domain::{
    AnyEntry, Entry, Interfaceversie, ListEntries, ListKind, Zorgaanbieder, ZorgaanbiederFields,
};
use crate::domain::{EntryChange, Snapshot};

/// The changes that retire one interface version.
#[derive(Debug, Clone, PartialEq)]
pub struct RetirePlan {
    pub changes: Vec<EntryChange>,
}

/// A Zorgaanbieder loses the Gegevensdiensten of the retired version (and is removed when
/// none remain); an OAuthclient of that version is removed.
pub fn retire_interface_version(version: &Interfaceversie, state: &Snapshot) -> RetirePlan {
    let retired = |v: Option<&Interfaceversie>| v == Some(version);
    let mut changes = Vec::new();
    if let ListEntries::Zal(zal) = &state.list(ListKind::Zal).state.entries {
        let versions = &state.list(ListKind::Zal).state;
        for za in zal.as_slice() {
            if !za
                .gegevensdiensten()
                .iter()
                .any(|gd| retired(gd.interfaceversie()))
            {
                continue;
            }
            let base = versions.version_of(za.key());
            let kept: Vec<_> = za
                .gegevensdiensten()
                .iter()
                .filter(|gd| !retired(gd.interfaceversie()))
                .cloned()
                .collect();
            let change = match kept.is_empty() {
                true => EntryChange::delete(ListKind::Zal, za.key(), base),
                false => {
                    let reduced = Zorgaanbieder::new(ZorgaanbiederFields {
                        naam: za.naam().clone(),
                        aanbiedertype: za.aanbiedertype(),
                        gegevensdiensten: kept,
                    })
                    .expect("a subset of valid, unique Gegevensdiensten is valid");
                    EntryChange::upsert(AnyEntry::Zorgaanbieder(reduced), base)
                }
            };
            changes.push(change);
        }
    }
    if let ListEntries::Ocl(ocl) = &state.list(ListKind::Ocl).state.entries {
        let versions = &state.list(ListKind::Ocl).state;
        changes.extend(
            ocl.as_slice()
                .iter()
                .filter(|client| retired(client.interfaceversie.as_ref()))
                .map(|client| {
                    EntryChange::delete(
                        ListKind::Ocl,
                        client.key(),
                        versions.version_of(client.key()),
                    )
                }),
        );
    }
    RetirePlan { changes }
}
