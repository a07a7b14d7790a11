//! The workflow's background job: approved changes whose `effective_from` has come are
//! applied, and lists whose approved changes waited the configured delay are published.
//! `serve` runs it every minute on every replica; the database makes each change happen once.

use std::sync::Arc;

use tokio::sync::watch;

use super::MutationWorkflow;
use crate::domain::{ListKind, VersionRecord};
use crate::publication::{PublishError, PublishOptions};

/// How often scheduled and delayed changes are looked for.
const SCHEDULE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl MutationWorkflow {
    /// Applies approved mutations whose `effective_from` has come, and publishes their lists
    /// and the lists whose approved changes have waited the configured delay. Failures are
    /// logged (and kept for health by the publisher).
    pub async fn publish_due(&self) -> Vec<(ListKind, Result<VersionRecord, PublishError>)> {
        let now = self.clock.now();
        let mut lists: Vec<ListKind> = Vec::new();
        match self.storage.apply_due_mutations(now).await {
            Ok(applied) => {
                for mutation in applied {
                    match &mutation.rejection_reason {
                        Some(reason) => {
                            tracing::warn!(id = mutation.id, %reason, "scheduled mutation rejected");
                        }
                        None if !lists.contains(&mutation.list) => lists.push(mutation.list),
                        None => {}
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot apply scheduled mutations"),
        }
        let scheduled = lists.len();
        match self.storage.unpublished_changes().await {
            Ok(pending) => {
                for (list, since) in pending {
                    if since + self.settings.auto_publish_delay <= now && !lists.contains(&list) {
                        lists.push(list);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the unpublished changes"),
        }
        let mut outcomes = Vec::new();
        for (i, list) in lists.into_iter().enumerate() {
            let options = PublishOptions {
                confirm_mass_change: false,
                published_by: match i < scheduled {
                    true => "schedule".into(),
                    false => "auto-publication".into(),
                },
            };
            outcomes.push((list, self.publisher.publish(list, &options).await));
        }
        outcomes
    }

    /// Runs `publish_due` every minute until `shutdown` turns true.
    pub async fn run_schedule(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.publish_due().await;
            tokio::select! {
                _ = tokio::time::sleep(SCHEDULE_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
