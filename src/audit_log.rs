//! The audit log as a service for its readers: the JSON API, the web application's Audit
//! page and a mutation's timeline. Records are written inside the transaction of what they
//! record (storage) or by the admin listener's middleware; nothing here writes.

use std::sync::Arc;

use crate::domain::AuditRecord;
use crate::storage::{AuditQuery, AuditStore, StorageError};

/// The most records one read returns (the API's `limit` is bounded the same way).
const TIMELINE_LIMIT: u32 = 200;

pub struct AuditLog {
    storage: Arc<dyn AuditStore>,
}

impl AuditLog {
    pub fn new(storage: Arc<dyn AuditStore>) -> Self {
        Self { storage }
    }

    /// Records matching `query`, newest first.
    pub async fn records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        self.storage.audit_records(query).await
    }

    /// What happened to one object (`mutations/{id}`), oldest first.
    pub async fn timeline(&self, object: &str) -> Result<Vec<AuditRecord>, StorageError> {
        let mut records = self
            .records(&AuditQuery {
                object: Some(object.to_owned()),
                limit: TIMELINE_LIMIT,
                ..AuditQuery::default()
            })
            .await?;
        records.reverse();
        Ok(records)
    }
}
