//! Heartbeat: a current version is re-published, unchanged, before it comes within
//! `refresh_before` of expiry, so a current list is never expired (SPEC §5).

use std::sync::Arc;

use tokio::sync::watch;

use super::{PublishError, PublishOptions, Publisher};
use crate::domain::{ListKind, VersionRecord};
use crate::leases::Lease;
use crate::storage::StorageError;

/// The longest the heartbeat sleeps between looks, so configuration mistakes and clock
/// jumps are noticed within a minute.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(60);
/// How soon a failed publication is tried again (the node is not ready meanwhile).
const RETRY_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(5);

impl Publisher {
    /// Lists whose current version is within `refresh_before` of expiry now (when
    /// `renew_expiring`: on the replica holding the heartbeat lease), and lists whose last
    /// publication on this replica failed for a technical reason (a full disk, a database that
    /// was down): they are tried again every minute, so the node recovers without a restart.
    pub async fn heartbeat_due(&self, renew_expiring: bool) -> Result<Vec<ListKind>, StorageError> {
        let now = self.clock.now();
        let mut due = Vec::new();
        for list in ListKind::ALL {
            let failed = self.health(list).last_failure.is_some();
            if failed
                || renew_expiring
                    && self
                        .storage
                        .current_version(list)
                        .await?
                        .is_some_and(|current| {
                            current.expires_at - now <= self.settings.refresh_before
                        })
            {
                due.push(list);
            }
        }
        Ok(due)
    }

    /// Re-publishes every list `heartbeat_due`; failures are logged and kept for health.
    pub async fn heartbeat_tick(
        &self,
        renew_expiring: bool,
    ) -> Vec<(ListKind, Result<VersionRecord, PublishError>)> {
        let mut outcomes = Vec::new();
        let due = match self.heartbeat_due(renew_expiring).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "heartbeat cannot read the current versions");
                return outcomes;
            }
        };
        let options = PublishOptions {
            // Normally the content is what was published before. If the working state holds
            // an unconfirmed mass change, the heartbeat must not publish it unseen: it is
            // refused, logged every minute, and the list expires (readiness fails closed)
            // unless staff confirm or undo the change within `refresh_before`.
            confirm_mass_change: false,
            published_by: "heartbeat".into(),
        };
        for list in due {
            outcomes.push((list, self.publish(list, &options).await));
        }
        outcomes
    }

    /// Publishes every list a restore left unpublished (issue 23): its newest version is the
    /// last one recovered, below the restore's `next_volgnummer`, and a consumer may hold a
    /// newer one, so the node must not serve it (unless the operator restored knowing the
    /// versions recovered were the newest: `--serve-recovered`). Called before the node
    /// serves; the content is the restored working state, which staff had approved before
    /// the loss (a mass change in it is not held back a second time).
    pub async fn publish_restored(&self) -> Result<Vec<VersionRecord>, PublishError> {
        let mut published = Vec::new();
        for (list, next) in self.storage.lists_to_republish().await? {
            let current = self.storage.current_version(list).await?;
            if current.is_some_and(|v| v.volgnummer.get() >= next) {
                continue;
            }
            let options = PublishOptions {
                confirm_mass_change: true,
                published_by: "restore".into(),
            };
            published.push(self.publish(list, &options).await?);
        }
        Ok(published)
    }

    /// Runs the heartbeat until `shutdown` turns true: every replica retries its own failed
    /// publications; the one holding `lease` also renews expiring versions.
    pub async fn run_heartbeat(self: Arc<Self>, lease: Lease, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.heartbeat_tick(lease.held()).await;
            let failing = ListKind::ALL
                .into_iter()
                .any(|list| self.health(list).last_failure.is_some());
            let sleep = match failing {
                true => RETRY_AFTER_FAILURE,
                false => MAX_SLEEP,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                // A publication failed meanwhile: start retrying it now.
                _ = self.failed.notified(), if !failing => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
