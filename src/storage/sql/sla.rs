//! The SLA's statements (`SlaStore`), written once for both backends like the rest of
//! `sql.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{MUTATION_COLUMNS, list_of, mutation_from_row};
use super::{Backend, RequiredColumns, Row, SqlStorage, Transaction, corrupt, query};
use crate::domain::{MutationRecord, MutationSla, Notification, NotificationChannel};
use crate::storage::{OpenDeadline, SlaStore, SlaTotal, StorageError};

const NOTIFICATION_COLUMNS: &str = "mutation_id, channel, created_at, deadline, werkdagen_left, \
     attempts, next_attempt_at, delivered_at, last_error";

fn notification_from_row(row: &impl Row) -> Result<Notification, StorageError> {
    Ok(Notification {
        mutation_id: row.required_int(0)?,
        channel: row.required_text(1)?.parse().map_err(corrupt)?,
        created_at: row.required_instant(2)?,
        deadline: row.required_instant(3)?,
        werkdagen_left: row
            .float(4)?
            .ok_or_else(|| corrupt("werkdagen_left is NULL"))?,
        attempts: row.required_int(5)?,
        next_attempt_at: row.required_instant(6)?,
        delivered_at: row.instant(7)?,
        last_error: row.text(8)?,
    })
}

fn mutations_from_rows(rows: &[impl Row]) -> Result<Vec<MutationRecord>, StorageError> {
    rows.iter()
        .map(|row| Ok(mutation_from_row(row)?.0))
        .collect()
}

#[async_trait]
impl<B: Backend> SlaStore for SqlStorage<B> {
    async fn sla_backlog(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        let rows = self
            .0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id > $1 \
                     AND (sla_deadline IS NULL OR (sla_outcome IS NULL \
                     AND status IN ('published', 'rejected', 'withdrawn'))) ORDER BY id LIMIT $2"
                ))
                .int(after_id)
                .int(i64::from(limit)),
            )
            .await?;
        mutations_from_rows(&rows)
    }

    async fn record_sla(&self, id: i64, sla: &MutationSla) -> Result<(), StorageError> {
        let mut tx = self.0.begin_write().await?;
        if let Some(d) = &sla.deadline {
            tx.execute(
                query(
                    "UPDATE mutations SET sla_deadline = $1, sla_calendar = $2 \
                     WHERE id = $3 AND sla_deadline IS NULL",
                )
                .instant(d.deadline)
                .text(d.calendar.as_str())
                .int(id),
            )
            .await?;
        }
        if let Some(c) = &sla.completion {
            tx.execute(
                query(
                    "UPDATE mutations SET sla_outcome = $1, sla_completed_at = $2, \
                     sla_werkdagen = $3, sla_excluded_reason = $4 \
                     WHERE id = $5 AND sla_outcome IS NULL",
                )
                .text(c.outcome.as_str())
                .instant(c.completed_at)
                .float(c.werkdagen)
                .text(c.excluded_reason.as_deref())
                .int(id),
            )
            .await?;
        }
        tx.commit().await
    }

    async fn open_deadlines(
        &self,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<OpenDeadline>, StorageError> {
        const OPEN: &str = "SELECT id, list, status, submitted_at, effective_from, sla_deadline \
                            FROM mutations WHERE status IN ('submitted', 'approved')";
        let open = match before {
            None => query(format!("{OPEN} ORDER BY submitted_at, id")),
            Some(before) => query(format!(
                "{OPEN} AND sla_deadline < $1 ORDER BY submitted_at, id"
            ))
            .instant(before),
        };
        self.0
            .fetch(open)
            .await?
            .iter()
            .map(|row| {
                Ok(OpenDeadline {
                    id: row.required_int(0)?,
                    list: list_of(row, 1)?,
                    status: row.required_text(2)?.parse().map_err(corrupt)?,
                    submitted_at: row.required_instant(3)?,
                    effective_from: row.instant(4)?,
                    deadline: row.instant(5)?,
                })
            })
            .collect()
    }

    async fn completed_mutations(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        let rows = self
            .0
            .fetch(
                query(format!(
                    "SELECT {MUTATION_COLUMNS} FROM mutations WHERE sla_completed_at >= $1 \
                     AND sla_completed_at < $2 ORDER BY sla_completed_at, id"
                ))
                .instant(since)
                .instant(until),
            )
            .await?;
        mutations_from_rows(&rows)
    }

    async fn sla_totals(&self, bounds: &[f64]) -> Result<Vec<SlaTotal>, StorageError> {
        // One `SUM(CASE …)` per bound; the bounds are parameters, never SQL text.
        let at_most: String = (0..bounds.len())
            .map(|i| {
                format!(
                    ", SUM(CASE WHEN sla_werkdagen <= ${} THEN 1 ELSE 0 END)",
                    i + 1
                )
            })
            .collect();
        let mut statement = query(format!(
            "SELECT list, urgent, sla_outcome, COUNT(*), SUM(COALESCE(sla_werkdagen, 0.0)){at_most} \
             FROM mutations WHERE sla_outcome IS NOT NULL GROUP BY list, urgent, sla_outcome \
             ORDER BY list, urgent, sla_outcome"
        ));
        for bound in bounds {
            statement = statement.float(*bound);
        }
        self.0
            .fetch(statement)
            .await?
            .iter()
            .map(|row| {
                Ok(SlaTotal {
                    list: list_of(row, 0)?,
                    urgent: row.boolean(1)?,
                    outcome: row.required_text(2)?.parse().map_err(corrupt)?,
                    count: row.required_int(3)?,
                    werkdagen_sum: row.float(4)?.unwrap_or(0.0),
                    at_most: (0..bounds.len())
                        .map(|i| Ok(row.int(5 + i)?.unwrap_or(0)))
                        .collect::<Result<_, StorageError>>()?,
                })
            })
            .collect()
    }

    async fn queue_notifications(
        &self,
        n: &Notification,
        channels: &[NotificationChannel],
    ) -> Result<bool, StorageError> {
        let mut tx = self.0.begin_write().await?;
        let mut queued = false;
        for channel in channels {
            let delivered = (*channel == NotificationChannel::Log).then_some(n.created_at);
            queued |= tx
                .execute(
                    query(
                        "INSERT INTO sla_notifications (mutation_id, channel, created_at, \
                         deadline, werkdagen_left, attempts, next_attempt_at, delivered_at) \
                         VALUES ($1, $2, $3, $4, $5, 0, $3, $6) \
                         ON CONFLICT (mutation_id, channel) DO NOTHING",
                    )
                    .int(n.mutation_id)
                    .text(channel.as_str())
                    .instant(n.created_at)
                    .instant(n.deadline)
                    .float(n.werkdagen_left)
                    .instant(delivered),
                )
                .await?
                > 0;
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn claim_notifications(
        &self,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StorageError> {
        let mut tx = self.0.begin_write().await?;
        let due = tx
            .fetch(
                query(format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM sla_notifications \
                     WHERE delivered_at IS NULL AND next_attempt_at <= $1 AND attempts < $2 \
                     ORDER BY next_attempt_at LIMIT $3"
                ))
                .instant(at)
                .int(max_attempts)
                .int(i64::from(limit)),
            )
            .await?;
        let mut claimed = Vec::new();
        for row in &due {
            let mut n = notification_from_row(row)?;
            // Another replica that read the same row claims it first or not at all: the
            // update only matches the row as it was read.
            let changed = tx
                .execute(
                    query(
                        "UPDATE sla_notifications SET attempts = attempts + 1, \
                         next_attempt_at = $1 WHERE mutation_id = $2 AND channel = $3 \
                         AND attempts = $4 AND delivered_at IS NULL",
                    )
                    .instant(lease_until)
                    .int(n.mutation_id)
                    .text(n.channel.as_str())
                    .int(n.attempts),
                )
                .await?;
            if changed == 1 {
                n.attempts += 1;
                n.next_attempt_at = lease_until;
                claimed.push(n);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_notification(
        &self,
        n: &Notification,
        at: DateTime<Utc>,
        result: Result<(), (&str, DateTime<Utc>)>,
    ) -> Result<(), StorageError> {
        let (id, channel) = (n.mutation_id, n.channel.as_str());
        let statement = match result {
            Ok(()) => query(
                "UPDATE sla_notifications SET delivered_at = $1, last_error = NULL \
                 WHERE mutation_id = $2 AND channel = $3",
            )
            .instant(at)
            .int(id)
            .text(channel),
            Err((error, retry_at)) => query(
                "UPDATE sla_notifications SET next_attempt_at = $1, last_error = $4 \
                 WHERE mutation_id = $2 AND channel = $3 AND delivered_at IS NULL",
            )
            .instant(retry_at)
            .int(id)
            .text(channel)
            .text(error),
        };
        let mut tx = self.0.begin_write().await?;
        tx.execute(statement).await?;
        tx.commit().await
    }

    async fn notifications(&self, mutation_id: i64) -> Result<Vec<Notification>, StorageError> {
        self.0
            .fetch(
                query(format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM sla_notifications \
                     WHERE mutation_id = $1 ORDER BY channel"
                ))
                .int(mutation_id),
            )
            .await?
            .iter()
            .map(notification_from_row)
            .collect()
    }
}
