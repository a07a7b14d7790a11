//! Leases on singleton work (`LeaseStore`), written once for both backends. Every instant is
//! the database's: read with the backend's `now_micros` inside the deciding transaction, so
//! two replicas whose clocks disagree still agree on whether a lease has expired.

use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, RequiredColumns, SqlStorage, Transaction, query};
use crate::storage::{LeaseRecord, LeaseStore, StorageError};

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[async_trait]
impl<B: Backend> LeaseStore for SqlStorage<B> {
    async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StorageError> {
        let mut tx = self.0.begin_write().await?;
        let now = tx
            .fetch_one(query(format!("SELECT {}", self.0.now_micros())))
            .await?
            .required_int(0)?;
        let expires = now.saturating_add(micros(ttl));
        let current = tx
            .fetch_optional(
                query("SELECT holder, fence, expires_at_us FROM leases WHERE name = $1")
                    .text(name)
                    .for_update(),
            )
            .await?;
        let fence = match current {
            // Replicas racing for a lease nobody held yet: PostgreSQL makes the later insert
            // wait for the earlier one and then do nothing; SQLite has one writer.
            None => {
                let inserted = tx
                    .execute(
                        query(
                            "INSERT INTO leases (name, holder, fence, acquired_at_us, expires_at_us) \
                             VALUES ($1, $2, 1, $3, $4) ON CONFLICT (name) DO NOTHING",
                        )
                        .text(name)
                        .text(holder)
                        .int(now)
                        .int(expires),
                    )
                    .await?;
                (inserted == 1).then_some(1)
            }
            Some(row) => {
                let (current_holder, fence, expires_at) = (
                    row.required_text(0)?,
                    row.required_int(1)?,
                    row.required_int(2)?,
                );
                if current_holder == holder {
                    tx.execute(
                        query("UPDATE leases SET expires_at_us = $2 WHERE name = $1")
                            .text(name)
                            .int(expires),
                    )
                    .await?;
                    Some(fence)
                } else if expires_at <= now {
                    tx.execute(
                        query(
                            "UPDATE leases SET holder = $2, fence = $3, acquired_at_us = $4, \
                             expires_at_us = $5 WHERE name = $1",
                        )
                        .text(name)
                        .text(holder)
                        .int(fence + 1)
                        .int(now)
                        .int(expires),
                    )
                    .await?;
                    Some(fence + 1)
                } else {
                    None
                }
            }
        };
        tx.commit().await?;
        Ok(fence)
    }

    async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
    ) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        tx.execute(
            query(format!(
                "UPDATE leases SET expires_at_us = {} \
                 WHERE name = $1 AND holder = $2 AND fence = $3",
                self.0.now_micros()
            ))
            .text(name)
            .text(holder)
            .int(fence),
        )
        .await?;
        tx.commit().await
    }

    async fn leases(&self) -> Result<Vec<LeaseRecord>, StorageError> {
        let rows = self
            .0
            .fetch(query(format!(
                "SELECT name, holder, fence, expires_at_us - {} FROM leases ORDER BY name",
                self.0.now_micros()
            )))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LeaseRecord {
                    name: row.required_text(0)?,
                    holder: row.required_text(1)?,
                    fence: row.required_int(2)?,
                    expires_in: chrono::Duration::microseconds(row.required_int(3)?),
                })
            })
            .collect()
    }
}
