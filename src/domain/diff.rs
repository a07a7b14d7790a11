//! What changed between two versions of a list, entry by entry (SPEC §6,
//! `/lists/{list}/diff`): entries added, changed and removed, by key, in key order.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::ListEntries;

/// An entry in its stored JSON form, with its key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyedEntry {
    pub key: String,
    pub entry: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedEntry {
    pub key: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EntryDiff {
    pub added: Vec<KeyedEntry>,
    pub changed: Vec<ChangedEntry>,
    pub removed: Vec<KeyedEntry>,
}

impl ListEntries {
    fn json_by_key(&self) -> BTreeMap<String, Value> {
        self.to_json_rows()
            .into_iter()
            .map(|(key, json)| {
                let value = serde_json::from_str(&json).expect("entries serialise to JSON");
                (key, value)
            })
            .collect()
    }

    /// The changes that turn `self` into `newer`.
    pub fn diff(&self, newer: &ListEntries) -> EntryDiff {
        let (before, mut after) = (self.json_by_key(), newer.json_by_key());
        let mut diff = EntryDiff::default();
        for (key, old) in before {
            match after.remove(&key) {
                None => diff.removed.push(KeyedEntry { key, entry: old }),
                Some(new) if new != old => diff.changed.push(ChangedEntry {
                    key,
                    before: old,
                    after: new,
                }),
                Some(_) => {}
            }
        }
        diff.added = after
            .into_iter()
            .map(|(key, entry)| KeyedEntry { key, entry })
            .collect();
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EntrySet, GegevensdienstNaam};

    fn gnl(names: &[(&str, &str)]) -> ListEntries {
        let entries = names
            .iter()
            .map(|(id, name)| {
                serde_json::from_value::<GegevensdienstNaam>(
                    serde_json::json!({ "id": id, "weergavenaam": name }),
                )
                .unwrap()
            })
            .collect();
        ListEntries::Gnl(EntrySet::new(entries).unwrap())
    }

    #[test]
    fn a_diff_names_added_changed_and_removed_entries_by_key() {
        let before = gnl(&[("1", "Basisgegevens"), ("4", "Labuitslagen"), ("7", "Oud")]);
        let after = gnl(&[
            ("1", "Basisgegevens"),
            ("4", "Laboratorium"),
            ("9", "Nieuw"),
        ]);
        let diff = before.diff(&after);
        let keys =
            |entries: &[KeyedEntry]| entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&diff.added), ["9"]);
        assert_eq!(keys(&diff.removed), ["7"]);
        assert_eq!(diff.changed.len(), 1);
        assert_eq!(diff.changed[0].key, "4");
        assert_eq!(diff.changed[0].after["weergavenaam"], "Laboratorium");
        assert_eq!(before.diff(&before), EntryDiff::default());
    }
}
