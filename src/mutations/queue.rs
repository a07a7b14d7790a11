//! What staff read through the workflow: one mutation, a list of them, the work queue (open
//! mutations, the most urgent first, each with its SLA standing), an entry of the working
//! state with its version.

use serde::Serialize;

use super::{MutationWorkflow, WorkflowError};
use crate::domain::{ListKind, MutationRecord};
use crate::sla::Standing;
use crate::storage::{MutationQuery, OpenQueueQuery};

/// One page of the work queue.
#[derive(Debug, Clone)]
pub struct OpenQueue {
    pub mutations: Vec<QueuedMutation>,
    /// More open mutations match than this page holds.
    pub more: bool,
}

/// An open mutation and where it stands against its deadline (`None` until the node stored
/// a deadline for a mutation from before the SLA).
#[derive(Debug, Clone)]
pub struct QueuedMutation {
    pub mutation: MutationRecord,
    pub standing: Option<Standing>,
}

/// An entry of the working state and its version (the next change's `base_version`).
#[derive(Debug, Clone, Serialize)]
pub struct EntryVersion {
    pub list: ListKind,
    pub key: String,
    pub version: i64,
    pub removed: bool,
    pub entry: Option<serde_json::Value>,
}

impl MutationWorkflow {
    pub async fn mutation(&self, id: i64) -> Result<MutationRecord, WorkflowError> {
        self.storage
            .mutation(id)
            .await?
            .ok_or(WorkflowError::UnknownMutation(id))
    }

    pub async fn mutations(
        &self,
        query: &MutationQuery,
    ) -> Result<Vec<MutationRecord>, WorkflowError> {
        Ok(self.storage.mutations(query).await?)
    }

    /// One page of the work queue: open mutations matching `query`, the most urgent first,
    /// each with where it stands against its SLA deadline. Exact at any backlog: the
    /// database selects and orders, so no open mutation hides behind decided ones.
    pub async fn open_queue(&self, query: &OpenQueueQuery) -> Result<OpenQueue, WorkflowError> {
        // One more than asked tells whether a next page exists.
        let mut mutations = self
            .storage
            .open_mutations(&OpenQueueQuery {
                limit: query.limit.saturating_add(1),
                ..query.clone()
            })
            .await?;
        let more = mutations.len() > query.limit as usize;
        mutations.truncate(query.limit as usize);
        let now = self.clock.now();
        let mutations = mutations
            .into_iter()
            .map(|mutation| QueuedMutation {
                standing: mutation
                    .sla
                    .deadline
                    .as_ref()
                    .map(|d| self.settings.sla.standing(d.deadline, now)),
                mutation,
            })
            .collect();
        Ok(OpenQueue { mutations, more })
    }

    /// An entry of the working state with its version, removed entries included.
    pub async fn entry(&self, list: ListKind, key: &str) -> Result<EntryVersion, WorkflowError> {
        let current = self.state().current().await?;
        let working = &current.list(list).state;
        let version = working.version_of(key);
        if version == 0 {
            return Err(WorkflowError::UnknownEntry {
                list,
                key: key.to_owned(),
            });
        }
        let entry = working.entries.entry_json(key);
        Ok(EntryVersion {
            list,
            key: key.to_owned(),
            version,
            removed: entry.is_none(),
            entry,
        })
    }
}
