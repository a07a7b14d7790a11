//! The working state of all four lists as the checks read it, reloaded only when a list's
//! revision moved on: submissions far outnumber the changes that reach the working state,
//! and reading a 10 000-entry ZAL for each of them would dominate their cost.

use std::sync::{Arc, Mutex};

use crate::domain::Snapshot;
use crate::storage::{Storage, StorageError};

pub struct StateCache {
    storage: Arc<dyn Storage>,
    cached: Mutex<Option<Arc<Snapshot>>>,
}

impl StateCache {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            cached: Mutex::new(None),
        }
    }

    /// The working state, at least as new as the revisions at the moment of the call.
    pub async fn current(&self) -> Result<Arc<Snapshot>, StorageError> {
        // Revisions first: a snapshot read after them is at least that new, so a cached
        // snapshot is never older than the revisions it is compared with.
        let revisions = self.storage.revisions().await?;
        if let Some(cached) = self.cached.lock().expect("state cache lock").clone()
            && cached
                .lists
                .iter()
                .all(|(list, s)| revisions.get(list) == Some(&s.revision))
        {
            return Ok(cached);
        }
        let fresh = Arc::new(self.storage.snapshot().await?);
        *self.cached.lock().expect("state cache lock") = Some(fresh.clone());
        Ok(fresh)
    }
}
