//! Parsed entries of recently read versions, by document SHA-256: the mass-change rule, the
//! honoured query and the version diffs read them without parsing the archive again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::background;
use crate::domain::ListEntries;

/// A handful of versions are current or in grace at any time; diffs add a few more.
const CAPACITY: usize = 16;

#[derive(Default)]
pub(super) struct Contents {
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, (Arc<ListEntries>, u64)>,
    /// Counts uses; the entry with the oldest use goes first.
    clock: u64,
}

impl Contents {
    pub(super) fn get(&self, sha256: &str) -> Option<Arc<ListEntries>> {
        let mut lru = self.inner.lock().expect("contents lock");
        lru.clock += 1;
        let now = lru.clock;
        lru.entries.get_mut(sha256).map(|(entries, used)| {
            *used = now;
            entries.clone()
        })
    }

    /// Keeps `entries`; makes room by letting go of the least recently used version, which is
    /// freed off the async threads (a 10 000-Zorgaanbieder version takes ~10 ms to free).
    pub(super) fn remember(&self, sha256: &str, entries: Arc<ListEntries>) {
        let evicted = {
            let mut lru = self.inner.lock().expect("contents lock");
            lru.clock += 1;
            let now = lru.clock;
            let evicted = if lru.entries.len() >= CAPACITY && !lru.entries.contains_key(sha256) {
                let oldest = lru
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(sha256, _)| sha256.clone());
                oldest.and_then(|sha256| lru.entries.remove(&sha256))
            } else {
                None
            };
            lru.entries.insert(sha256.to_owned(), (entries, now));
            evicted
        };
        if let Some((entries, _)) = evicted {
            background::drop_later(entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EntrySet;

    fn entries() -> Arc<ListEntries> {
        Arc::new(ListEntries::Gnl(EntrySet::empty()))
    }

    #[test]
    fn the_least_recently_used_version_makes_room() {
        let contents = Contents::default();
        for i in 0..CAPACITY {
            contents.remember(&i.to_string(), entries());
        }
        assert!(
            contents.get("0").is_some(),
            "used now, so no longer the oldest"
        );
        contents.remember("new", entries());
        assert!(contents.get("0").is_some());
        assert!(contents.get("1").is_none(), "the least recently used went");
        assert!(contents.get("new").is_some());
        assert!((2..CAPACITY).all(|i| contents.get(&i.to_string()).is_some()));
    }
}
