//! The working state of the lists: what the next publication renders, with the version of
//! every entry that changes are based on (rule 8), and the snapshot of all four lists that
//! checks and publications read at one instant.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{EntryChange, ListEntries, ListKind, VersionRecord, Volgnummer};

/// The working state of one list: its live entries and the version of every key ever stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingState {
    pub entries: ListEntries,
    /// Version per key, removed entries (tombstones) included.
    pub versions: BTreeMap<String, i64>,
}

impl WorkingState {
    /// The version a change to `key` must be based on: 0 for a key never stored.
    pub fn version_of(&self, key: &str) -> i64 {
        self.versions.get(key).copied().unwrap_or(0)
    }

    /// The state after `change` is stored, as storage writes it: the entry added, replaced
    /// or removed, its version one above the change's base. `false` (nothing changed) for a
    /// change of another list or on another base version.
    pub fn apply(&mut self, change: &EntryChange) -> bool {
        if change.list() != self.entries.kind()
            || change.base_version() != self.version_of(change.key())
        {
            return false;
        }
        let applied = match change.entry() {
            Some(entry) => self.entries.put(entry.clone()),
            None => {
                self.entries.remove(change.key());
                true
            }
        };
        if applied {
            self.versions
                .insert(change.key().to_owned(), change.base_version() + 1);
        }
        applied
    }

    /// Keys that were stored once and have since been removed.
    pub fn removed_keys(&self) -> impl Iterator<Item = &str> {
        let live: HashSet<&str> = self.entries.keys().into_iter().collect();
        self.versions
            .keys()
            .map(String::as_str)
            .filter(move |key| !live.contains(key))
    }
}

/// Where a list's numbering stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHead {
    pub list: ListKind,
    /// The highest Volgnummer used so far, published or imported.
    pub last_volgnummer: Option<Volgnummer>,
    pub imported_volgnummer: Option<Volgnummer>,
    pub imported_at: Option<DateTime<Utc>>,
}

impl ListHead {
    /// The Volgnummer the next publication of this list gets.
    pub fn next_volgnummer(&self) -> Volgnummer {
        self.last_volgnummer
            .map_or(Volgnummer::FIRST, Volgnummer::next)
    }

    /// The highest Volgnummer used once a document carrying `imported` is imported.
    ///
    /// An imported Volgnummer is that of a version published elsewhere — the incumbent
    /// registry's list this node takes over (SPEC §5: numbering continues from it). It counts
    /// only while this node has published none of the list. Once it has, the numbering is this
    /// node's: Volgnummers rise by exactly one per published version, and an imported
    /// document — often this node's own `export`, which carries the *next* Volgnummer — only
    /// replaces the entries (issue 21: importing such an export skipped a Volgnummer).
    pub fn last_after_import(
        &self,
        imported: Volgnummer,
        published_here: bool,
    ) -> Option<Volgnummer> {
        match (published_here, self.last_volgnummer) {
            (true, last) => last,
            (false, Some(last)) => Some(last.max(imported)),
            (false, None) => Some(imported),
        }
    }
}

/// Where a list stands, without its working state: its numbering, revisions and newest
/// version. Enough to renew a version of a list unchanged since it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct ListStanding {
    pub head: ListHead,
    /// The working state's revision: a publication is stored only if it is unchanged.
    pub revision: i64,
    /// The revision `current` was published from, where known.
    pub published_revision: Option<i64>,
    /// The newest published version, if any.
    pub current: Option<VersionRecord>,
}

impl ListStanding {
    /// Whether the working state is exactly the current version's content (nothing changed
    /// since it was published), so the published entries need not be read from the archive.
    pub fn unchanged_since_published(&self) -> bool {
        self.current.is_some() && self.published_revision == Some(self.revision)
    }
}

/// One list as a publication starts from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSnapshot {
    /// Shared: snapshots taken while a list did not change hold the same state.
    pub state: Arc<WorkingState>,
    pub standing: ListStanding,
}

/// All four lists at one instant (one read transaction), since the integrity of one list
/// depends on the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub lists: BTreeMap<ListKind, ListSnapshot>,
    /// GegevensdienstIds ever removed from the GNL.
    pub retired_gegevensdienst_ids: BTreeSet<String>,
}

impl Snapshot {
    pub fn list(&self, list: ListKind) -> &ListSnapshot {
        self.lists.get(&list).expect("a snapshot holds every list")
    }

    /// Whether this is the working state at exactly these revisions.
    pub fn at_revisions(&self, revisions: &BTreeMap<ListKind, i64>) -> bool {
        self.lists
            .iter()
            .all(|(list, s)| revisions.get(list) == Some(&s.standing.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AnyEntry, EntrySet, Hostname, MedMijNode};

    fn node(host: &str) -> AnyEntry {
        AnyEntry::MedMijNode(MedMijNode {
            hostname: Hostname::parse(host).unwrap(),
        })
    }

    #[test]
    fn a_change_is_applied_as_storage_writes_it() {
        let mut state = WorkingState {
            entries: ListEntries::Whitelist(EntrySet::empty()),
            versions: BTreeMap::new(),
        };
        assert!(state.apply(&EntryChange::upsert(node("b.example.nl"), 0)));
        assert!(state.apply(&EntryChange::upsert(node("a.example.nl"), 0)));
        assert_eq!(state.entries.keys(), ["a.example.nl", "b.example.nl"]);
        assert_eq!(state.version_of("a.example.nl"), 1);

        // On a base version that is not the entry's: nothing changes.
        assert!(!state.apply(&EntryChange::upsert(node("a.example.nl"), 0)));
        assert!(!state.apply(&EntryChange::delete(ListKind::Zal, "a.example.nl", 1)));

        assert!(state.apply(&EntryChange::delete(ListKind::Whitelist, "a.example.nl", 1)));
        assert_eq!(state.entries.keys(), ["b.example.nl"]);
        assert_eq!(
            state.version_of("a.example.nl"),
            2,
            "a tombstone keeps its version"
        );
        assert_eq!(state.removed_keys().collect::<Vec<_>>(), ["a.example.nl"]);
    }
}
