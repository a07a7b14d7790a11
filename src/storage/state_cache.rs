//! The working state of all four lists as checks and publications read it, shared by the
//! mutation workflow and the publisher of one process.
//!
//! Submissions far outnumber the changes that reach the working state, and reading a
//! 10 000-entry ZAL takes a large part of a second, so:
//!
//! - a check takes the cached snapshot while every list's revision is still the cached one
//!   (one small query);
//! - otherwise one caller reloads and concurrent callers wait for that one reload (single
//!   flight) instead of each reading every list (a burst after a start or an approval);
//! - a reload reads again only the lists whose revision moved; the others are shared;
//! - after this process applied a change (an approval), the cached state takes the change
//!   itself when the change is provably the only one since it was read, so the publication
//!   that follows reads no list at all. The approval holds the reload turn from before its
//!   transaction stores the change until the cache has it: a check that sees the new
//!   revision in between waits for the change instead of reading the whole list again (at
//!   500 requests/s one often did, stalling its worker for a tenth of a second).
//!
//! Whatever the cache holds, the storing transactions check revisions and entry versions
//! themselves: a stale snapshot can make an attempt fail (and retry), never store a wrong
//! change or version.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{ListStore, StorageError};
use crate::domain::{EntryChange, ListKind, Snapshot};

pub struct StateCache {
    storage: Arc<dyn ListStore>,
    cached: Mutex<Option<Arc<Snapshot>>>,
    /// Held by the one caller that reloads, or by an approval storing its change.
    reloading: tokio::sync::Mutex<()>,
    reads: AtomicU64,
}

impl StateCache {
    pub fn new(storage: Arc<dyn ListStore>) -> Self {
        Self {
            storage,
            cached: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            reads: AtomicU64::new(0),
        }
    }

    fn cached(&self) -> Option<Arc<Snapshot>> {
        self.cached.lock().expect("state cache lock").clone()
    }

    fn cached_at(&self, revisions: &BTreeMap<ListKind, i64>) -> Option<Arc<Snapshot>> {
        self.cached().filter(|c| c.at_revisions(revisions))
    }

    /// The working state, at least as new as the revisions at the moment of the call. Its
    /// heads and current versions may be older: checks read only entries.
    pub async fn current(&self) -> Result<Arc<Snapshot>, StorageError> {
        // Revisions first: a snapshot read after them is at least that new.
        let revisions = self.storage.revisions().await?;
        if let Some(cached) = self.cached_at(&revisions) {
            return Ok(cached);
        }
        let _turn = self.reloading.lock().await;
        // The reload this call waited for may have brought it.
        if let Some(cached) = self.cached_at(&revisions) {
            return Ok(cached);
        }
        self.reload().await
    }

    /// A snapshot read now, in one transaction (heads and current versions included), for a
    /// publication; lists that did not change are shared with the cache.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StorageError> {
        let _turn = self.reloading.lock().await;
        self.reload().await
    }

    /// How often this cache has read the working state from the database.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    async fn reload(&self) -> Result<Arc<Snapshot>, StorageError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let known = self.cached();
        let fresh = Arc::new(self.storage.snapshot_reusing(known.as_deref()).await?);
        let mut cached = self.cached.lock().expect("state cache lock");
        // Never replace a newer snapshot (revisions only grow).
        let newer_cached = cached.as_ref().is_some_and(|c| {
            c.lists.iter().any(|(l, s)| {
                fresh
                    .lists
                    .get(l)
                    .is_some_and(|f| s.standing.revision > f.standing.revision)
            })
        });
        if !newer_cached {
            *cached = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// The turn of a change this process is about to store (an approval): take it before the
    /// storing transaction, then tell it what was stored (`ChangeTurn::applied`). Checks that
    /// find the revisions moved meanwhile wait for it.
    pub async fn change_turn(&self) -> ChangeTurn<'_> {
        ChangeTurn {
            cache: self,
            _turn: self.reloading.lock().await,
        }
    }
}

/// See `StateCache::change_turn`; dropped without `applied` when nothing was stored.
pub struct ChangeTurn<'a> {
    cache: &'a StateCache,
    _turn: tokio::sync::MutexGuard<'a, ()>,
}

impl ChangeTurn<'_> {
    /// Tells the cache that this process stored `change`, with `before` the snapshot that was
    /// current when the approval started. When the revisions now show exactly one change since
    /// `before` — in the changed list, so it is this one — the cached state becomes `before`
    /// with the change applied; otherwise the next caller reloads what moved.
    pub async fn applied(self, before: Arc<Snapshot>, change: &EntryChange) {
        let cache = self.cache;
        let Ok(revisions) = cache.storage.revisions().await else {
            return;
        };
        let list = change.list();
        let only_this_change = before.lists.iter().all(|(l, s)| {
            let expected = if *l == list {
                s.standing.revision + 1
            } else {
                s.standing.revision
            };
            revisions.get(l) == Some(&expected)
        });
        if !only_this_change || cache.cached_at(&revisions).is_some() {
            return;
        }
        // The cache lets go of its own reference (callers wait on the turn meanwhile), so the
        // changed list is updated in place unless a request still reads `before`; the other
        // lists stay shared either way. A copy of a large list is made off the async threads.
        drop(cache.cached.lock().expect("state cache lock").take());
        let change = change.clone();
        let next = tokio::task::spawn_blocking(move || {
            let mut next = Arc::unwrap_or_clone(before);
            if let Some(changed) = next.lists.get_mut(&change.list())
                && Arc::make_mut(&mut changed.state).apply(&change)
            {
                changed.standing.revision += 1;
            }
            next
        })
        .await
        .expect("applying a change does not panic");
        *cache.cached.lock().expect("state cache lock") = Some(Arc::new(next));
    }
}
