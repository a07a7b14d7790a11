//! The four lists: one entry of any list (`AnyEntry`), a list's
//! entries with unique keys in key order (`EntrySet`, `ListEntries`) and a whole document
//! (`Lijst`). Which list is `list_kind.rs`; the entry types are in `entries.rs`.
//!
//! Keys are unique within a list by construction, so a value of these types is always a
//! valid list.

use super::entries::*;
use super::list_kind::ListKind;
use super::version::{Tijdstempel, Volgnummer};
use super::violation::{Rule, Violation, Violations};

/// One entry of any list: what a single mutation adds or replaces.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEntry {
    Zorgaanbieder(Zorgaanbieder),
    OAuthclient(OAuthclient),
    GegevensdienstNaam(GegevensdienstNaam),
    MedMijNode(MedMijNode),
}

impl AnyEntry {
    pub fn list(&self) -> ListKind {
        match self {
            AnyEntry::Zorgaanbieder(_) => ListKind::Zal,
            AnyEntry::OAuthclient(_) => ListKind::Ocl,
            AnyEntry::GegevensdienstNaam(_) => ListKind::Gnl,
            AnyEntry::MedMijNode(_) => ListKind::Whitelist,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            AnyEntry::Zorgaanbieder(e) => e.key(),
            AnyEntry::OAuthclient(e) => e.key(),
            AnyEntry::GegevensdienstNaam(e) => e.key(),
            AnyEntry::MedMijNode(e) => e.key(),
        }
    }

    /// An entry of `list` from its storage form; every value goes through its constructor.
    pub fn from_json(list: ListKind, json: &str) -> Result<Self, serde_json::Error> {
        Ok(match list {
            ListKind::Zal => AnyEntry::Zorgaanbieder(serde_json::from_str(json)?),
            ListKind::Ocl => AnyEntry::OAuthclient(serde_json::from_str(json)?),
            ListKind::Gnl => AnyEntry::GegevensdienstNaam(serde_json::from_str(json)?),
            ListKind::Whitelist => AnyEntry::MedMijNode(serde_json::from_str(json)?),
        })
    }

    /// The storage form of the entry.
    pub fn to_json(&self) -> String {
        let json = match self {
            AnyEntry::Zorgaanbieder(e) => serde_json::to_string(e),
            AnyEntry::OAuthclient(e) => serde_json::to_string(e),
            AnyEntry::GegevensdienstNaam(e) => serde_json::to_string(e),
            AnyEntry::MedMijNode(e) => serde_json::to_string(e),
        };
        json.expect("list entries always serialise")
    }
}

/// The entries of one list: keys unique, kept in key order so that rendering is deterministic
/// whatever order they were stored or submitted in.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrySet<E: Entry>(Vec<E>);

impl<E: Entry> EntrySet<E> {
    /// Refuses repeated keys; `positions` are the entries' positions in the input (1-based),
    /// used to say which one repeats.
    pub fn new(entries: Vec<E>) -> Result<Self, Violations> {
        let mut indexed: Vec<(usize, E)> = entries.into_iter().enumerate().collect();
        indexed.sort_by(|(_, a), (_, b)| a.key().cmp(b.key()));
        let duplicates: Vec<Violation> = indexed
            .windows(2)
            .filter_map(|pair| match pair {
                [(_, first), second] if first.key() == second.1.key() => Some(second),
                _ => None,
            })
            .map(|(position, entry)| {
                Violation::new(
                    format!("{}[{}]/{}", E::ELEMENT, position + 1, E::KEY_ELEMENT),
                    Rule::Unique,
                    format!(
                        "{} \"{}\" occurs more than once",
                        E::KEY_ELEMENT,
                        entry.key()
                    ),
                )
            })
            .collect();
        match Violations::from_vec(duplicates) {
            Some(violations) => Err(violations),
            None => Ok(Self(indexed.into_iter().map(|(_, e)| e).collect())),
        }
    }

    pub fn empty() -> Self {
        Self(Vec::new())
    }

    pub fn as_slice(&self) -> &[E] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&E> {
        self.0
            .binary_search_by(|e| e.key().cmp(key))
            .ok()
            .and_then(|i| self.0.get(i))
    }

    /// Adds `entry`, or replaces the entry with its key; key order is kept.
    pub fn put(&mut self, entry: E) {
        match self.0.binary_search_by(|e| e.key().cmp(entry.key())) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    *slot = entry;
                }
            }
            Err(i) => self.0.insert(i, entry),
        }
    }

    /// Removes the entry with `key`, if there is one.
    pub fn remove(&mut self, key: &str) {
        if let Ok(i) = self.0.binary_search_by(|e| e.key().cmp(key)) {
            self.0.remove(i);
        }
    }
}

/// The entries of any one list.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEntries {
    Zal(EntrySet<Zorgaanbieder>),
    Ocl(EntrySet<OAuthclient>),
    Gnl(EntrySet<GegevensdienstNaam>),
    Whitelist(EntrySet<MedMijNode>),
}

impl ListEntries {
    pub fn kind(&self) -> ListKind {
        match self {
            ListEntries::Zal(_) => ListKind::Zal,
            ListEntries::Ocl(_) => ListKind::Ocl,
            ListEntries::Gnl(_) => ListKind::Gnl,
            ListEntries::Whitelist(_) => ListKind::Whitelist,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ListEntries::Zal(s) => s.len(),
            ListEntries::Ocl(s) => s.len(),
            ListEntries::Gnl(s) => s.len(),
            ListEntries::Whitelist(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys of the entries, in key order.
    pub fn keys(&self) -> Vec<&str> {
        fn keys<E: Entry>(set: &EntrySet<E>) -> Vec<&str> {
            set.as_slice().iter().map(Entry::key).collect()
        }
        match self {
            ListEntries::Zal(s) => keys(s),
            ListEntries::Ocl(s) => keys(s),
            ListEntries::Gnl(s) => keys(s),
            ListEntries::Whitelist(s) => keys(s),
        }
    }

    /// Whether an entry with `key` exists (a binary search: entries are kept in key order).
    pub fn contains_key(&self, key: &str) -> bool {
        match self {
            ListEntries::Zal(e) => e.get(key).is_some(),
            ListEntries::Ocl(e) => e.get(key).is_some(),
            ListEntries::Gnl(e) => e.get(key).is_some(),
            ListEntries::Whitelist(e) => e.get(key).is_some(),
        }
    }

    /// One entry in its stored JSON form.
    pub fn entry_json(&self, key: &str) -> Option<serde_json::Value> {
        let value = match self {
            ListEntries::Zal(e) => e.get(key).map(serde_json::to_value),
            ListEntries::Ocl(e) => e.get(key).map(serde_json::to_value),
            ListEntries::Gnl(e) => e.get(key).map(serde_json::to_value),
            ListEntries::Whitelist(e) => e.get(key).map(serde_json::to_value),
        };
        value.map(|v| v.expect("list entries always serialise"))
    }

    /// Adds or replaces `entry` when it belongs to this list (an entry of another list is
    /// not taken: the caller chose the wrong list, and nothing changes).
    pub fn put(&mut self, entry: AnyEntry) -> bool {
        match (self, entry) {
            (ListEntries::Zal(s), AnyEntry::Zorgaanbieder(e)) => s.put(e),
            (ListEntries::Ocl(s), AnyEntry::OAuthclient(e)) => s.put(e),
            (ListEntries::Gnl(s), AnyEntry::GegevensdienstNaam(e)) => s.put(e),
            (ListEntries::Whitelist(s), AnyEntry::MedMijNode(e)) => s.put(e),
            _ => return false,
        }
        true
    }

    pub fn remove(&mut self, key: &str) {
        match self {
            ListEntries::Zal(s) => s.remove(key),
            ListEntries::Ocl(s) => s.remove(key),
            ListEntries::Gnl(s) => s.remove(key),
            ListEntries::Whitelist(s) => s.remove(key),
        }
    }

    /// Each entry as (key, JSON body): the storage form of the working state.
    pub fn to_json_rows(&self) -> Vec<(String, String)> {
        fn rows<E: Entry>(set: &EntrySet<E>) -> Vec<(String, String)> {
            set.as_slice()
                .iter()
                .map(|e| {
                    let json = serde_json::to_string(e).expect("list entries always serialise");
                    (e.key().to_owned(), json)
                })
                .collect()
        }
        match self {
            ListEntries::Zal(s) => rows(s),
            ListEntries::Ocl(s) => rows(s),
            ListEntries::Gnl(s) => rows(s),
            ListEntries::Whitelist(s) => rows(s),
        }
    }

    /// Rebuilds a list from JSON bodies; every value goes through its constructor again.
    pub fn from_json_rows<'a>(
        kind: ListKind,
        bodies: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, serde_json::Error> {
        fn set<'a, E: Entry>(
            bodies: impl IntoIterator<Item = &'a str>,
        ) -> Result<EntrySet<E>, serde_json::Error> {
            let entries = bodies
                .into_iter()
                .map(serde_json::from_str)
                .collect::<Result<Vec<E>, _>>()?;
            EntrySet::new(entries).map_err(|v| serde::de::Error::custom(v.to_string()))
        }
        Ok(match kind {
            ListKind::Zal => ListEntries::Zal(set(bodies)?),
            ListKind::Ocl => ListEntries::Ocl(set(bodies)?),
            ListKind::Gnl => ListEntries::Gnl(set(bodies)?),
            ListKind::Whitelist => ListEntries::Whitelist(set(bodies)?),
        })
    }
}

/// A whole list document: its header and its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Lijst {
    pub tijdstempel: Tijdstempel,
    pub volgnummer: Volgnummer,
    pub entries: ListEntries,
}

impl Lijst {
    pub fn kind(&self) -> ListKind {
        self.entries.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Backchanneluri, Frontchanneluri, GegevensdienstId, Hostname, Systeemrolcode,
        Zorgaanbiedernaam,
    };

    fn systeemrol(code: &str) -> Systeemrol {
        Systeemrol {
            code: Systeemrolcode::parse(code).unwrap(),
            resource_endpoint: Backchanneluri::parse("https://fhir.example.nl/fhir").unwrap(),
        }
    }

    fn gegevensdienst(id: &str, codes: &[&str]) -> Result<Gegevensdienst, Violations> {
        Gegevensdienst::new(GegevensdienstFields {
            id: GegevensdienstId::parse(id).unwrap(),
            authorization_endpoint: Frontchanneluri::parse("https://auth.example.nl/authorize")
                .unwrap(),
            token_endpoint: Backchanneluri::parse("https://auth.example.nl/token").unwrap(),
            systeemrollen: codes.iter().map(|c| systeemrol(c)).collect(),
            interfaceversie: None,
        })
    }

    #[test]
    fn a_gegevensdienst_needs_unique_systeemrollen() {
        let empty = gegevensdienst("4", &[]).unwrap_err();
        assert_eq!(empty.as_slice()[0].rule, Rule::Structure);
        assert_eq!(empty.as_slice()[0].path, "Systeemrollen/Systeemrol");
        let dup = gegevensdienst("4", &["A", "B", "A"]).unwrap_err();
        assert_eq!(dup.as_slice()[0].rule, Rule::Unique);
        assert_eq!(
            dup.as_slice()[0].path,
            "Systeemrollen/Systeemrol[3]/Systeemrolcode"
        );
        assert!(gegevensdienst("4", &["A", "B"]).is_ok());
    }

    #[test]
    fn a_zorgaanbieder_needs_unique_gegevensdiensten() {
        let naam = Zorgaanbiedernaam::parse("umcharderwijk@medmij").unwrap();
        let err = Zorgaanbieder::new(ZorgaanbiederFields {
            naam: naam.clone(),
            aanbiedertype: Aanbiedertype::Za,
            gegevensdiensten: vec![],
        })
        .unwrap_err();
        assert_eq!(err.as_slice()[0].rule, Rule::Structure);
        let dup = Zorgaanbieder::new(ZorgaanbiederFields {
            naam,
            aanbiedertype: Aanbiedertype::Za,
            gegevensdiensten: vec![
                gegevensdienst("4", &["A"]).unwrap(),
                gegevensdienst("4", &["B"]).unwrap(),
            ],
        })
        .unwrap_err();
        assert_eq!(
            dup.as_slice()[0].path,
            "Gegevensdiensten/Gegevensdienst[2]/GegevensdienstId"
        );
    }

    #[test]
    fn entry_sets_are_sorted_and_unique() {
        let node = |h: &str| MedMijNode {
            hostname: Hostname::parse(h).unwrap(),
        };
        let set = EntrySet::new(vec![node("b.nl"), node("a.nl")]).unwrap();
        assert_eq!(set.as_slice()[0].key(), "a.nl");
        assert!(set.get("b.nl").is_some() && set.get("c.nl").is_none());
        let err = EntrySet::new(vec![node("b.nl"), node("a.nl"), node("B.nl")]).unwrap_err();
        assert_eq!(err.as_slice()[0].path, "MedMijNode[3]/Hostname");
        assert_eq!(err.as_slice()[0].rule, Rule::Unique);
    }

    #[test]
    fn deserialising_checks_structure_again() {
        let json = r#"{"naam":"umcharderwijk@medmij","gegevensdiensten":[]}"#;
        let err = serde_json::from_str::<Zorgaanbieder>(json).unwrap_err();
        assert!(
            err.to_string().contains("at least one Gegevensdienst"),
            "{err}"
        );
        let rows = ListEntries::from_json_rows(
            ListKind::Whitelist,
            [r#"{"hostname":"a.nl"}"#, r#"{"hostname":"A.NL"}"#],
        );
        assert!(rows.is_err(), "a duplicate after normalisation is refused");
    }

    #[test]
    fn list_kinds_parse_from_their_names() {
        for kind in ListKind::ALL {
            assert_eq!(kind.as_str().parse::<ListKind>().unwrap(), kind);
        }
        assert!("ZAL".parse::<ListKind>().is_err());
    }
}
