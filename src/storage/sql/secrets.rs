//! Secrets the replicas share (`SecretStore`), written once for both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backend, Row, SqlStorage, Transaction, query};
use crate::storage::{SecretStore, StorageError};

#[async_trait]
impl<B: Backend> SecretStore for SqlStorage<B> {
    async fn shared_secret(
        &self,
        name: &str,
        candidate: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Vec<u8>, StorageError> {
        let mut tx = self.0.begin_write().await?;
        tx.execute(
            query(
                "INSERT INTO node_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .text(name)
            .bytes(candidate)
            .instant(at),
        )
        .await?;
        let secret = tx
            .fetch_one(query("SELECT secret FROM node_secrets WHERE name = $1").text(name))
            .await?
            .bytes(0)?;
        tx.commit().await?;
        Ok(secret)
    }
}
