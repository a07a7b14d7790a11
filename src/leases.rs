//! Singleton work across replicas (issue 24): the nightly archive, retention, the archive
//! check, the heartbeat's re-publication and the SLA rounds each run on the one replica that
//! holds their lease in the database; every replica keeps trying, so when the holder dies
//! another takes over. No configuration names "the" replica.
//!
//! How it stays one: a holder renews its lease every third of `ttl`; the database judges
//! expiry by its own clock. A holder that could not renew within two thirds of `ttl` (by its
//! own monotonic clock, counted from the start of its last successful renewal) stops the work
//! itself — the future running it is dropped, so it stops at its next await — a third of
//! `ttl` before any other replica can take the lease. The lease's fence grows each time it
//! changes hands, so a holder that finds a new fence on renewal knows it lost the lease in
//! between and restarts its work as a new holder. The work itself is safe to repeat (the
//! publisher refuses a stale publication, SLA deliveries are claimed one by one, an export
//! writes its bundle under a temporary name and renames it): a lease keeps the replicas from
//! doing it twice, it is not what keeps the data right.
//!
//! A takeover happens at most `ttl` after the holder's last renewal plus one polling
//! interval (a third of `ttl`): 40 seconds with the default `ttl` of 30. A holder that stops
//! cleanly releases its leases, and another replica takes them within one polling interval.
//! On SQLite (one node process per database) the one node holds every lease.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::storage::LeaseStore;

/// The singleton jobs, each with its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Singleton {
    NightlyArchive,
    Retention,
    ArchiveCheck,
    /// Re-publishing a current version before it expires; every replica still retries its
    /// own failed publications.
    Heartbeat,
    /// Settling SLA deadlines, queueing and delivering notifications.
    SlaRounds,
}

impl Singleton {
    pub const ALL: [Singleton; 5] = [
        Singleton::NightlyArchive,
        Singleton::Retention,
        Singleton::ArchiveCheck,
        Singleton::Heartbeat,
        Singleton::SlaRounds,
    ];

    /// The lease's name in the database and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Singleton::NightlyArchive => "nightly-archive",
            Singleton::Retention => "retention",
            Singleton::ArchiveCheck => "archive-check",
            Singleton::Heartbeat => "heartbeat",
            Singleton::SlaRounds => "sla-rounds",
        }
    }
}

/// What this replica knows of one lease, for metrics and the ops status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The fence while this replica holds the lease.
    pub fence: Option<i64>,
    pub acquired: u64,
    /// Lost without giving it up: renewals failed, or another replica took it.
    pub lost: u64,
    pub released: u64,
}

/// This replica's side of every lease.
pub struct Leases {
    store: Arc<dyn LeaseStore>,
    holder: String,
    ttl: Duration,
    status: Mutex<BTreeMap<Singleton, LeaseStatus>>,
}

impl Leases {
    /// `holder` names this replica (unique per process); `ttl` is how long a lease lasts
    /// without renewal.
    pub fn new(store: Arc<dyn LeaseStore>, holder: String, ttl: Duration) -> Self {
        Self {
            store,
            holder,
            ttl,
            status: Mutex::new(BTreeMap::new()),
        }
    }

    /// A holder name unique to this process: host, process id and start time.
    pub fn process_holder() -> String {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let started = chrono::Utc::now().timestamp_micros();
        format!("{host}:{}:{started:x}", std::process::id())
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn status(&self) -> BTreeMap<Singleton, LeaseStatus> {
        self.status.lock().expect("lease status lock").clone()
    }

    fn record(&self, job: Singleton, change: impl FnOnce(&mut LeaseStatus)) {
        change(
            self.status
                .lock()
                .expect("lease status lock")
                .entry(job)
                .or_default(),
        );
    }

    /// Keeps trying to hold `job`'s lease until `shutdown` turns true, then releases it.
    /// The returned `Lease` says whether this replica holds it now.
    pub fn keep(self: &Arc<Self>, job: Singleton, shutdown: watch::Receiver<bool>) -> Lease {
        let (tell, held) = watch::channel(None);
        tokio::spawn(self.clone().keep_loop(job, tell, shutdown));
        Lease { held }
    }

    async fn keep_loop(
        self: Arc<Self>,
        job: Singleton,
        tell: watch::Sender<Option<i64>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let interval = self.ttl / 3;
        // The fence held and until when this replica may act on it.
        let mut held: Option<(i64, Instant)> = None;
        let mut failing = false;
        loop {
            let started = Instant::now();
            let claimed = self.claim(job, &mut failing).await;
            held = match (held, claimed) {
                (Some((fence, _)), Some(Some(now_fence))) if fence == now_fence => {
                    Some((fence, started + self.ttl * 2 / 3))
                }
                (previous, Some(Some(fence))) => {
                    if previous.is_some() {
                        self.lose(job, "another replica held the lease meanwhile");
                    }
                    tracing::info!(lease = job.as_str(), fence, holder = %self.holder, "lease acquired");
                    self.record(job, |s| {
                        s.acquired += 1;
                        s.fence = Some(fence);
                    });
                    Some((fence, started + self.ttl * 2 / 3))
                }
                (Some(_), Some(None)) => {
                    self.lose(job, "another replica holds the lease");
                    None
                }
                (Some((fence, until)), None) if Instant::now() < until => Some((fence, until)),
                (Some(_), None) => {
                    self.lose(job, "the lease could not be renewed in time");
                    None
                }
                (None, _) => None,
            };
            tell.send_if_modified(|told| {
                let now = held.map(|(fence, _)| fence);
                let changed = *told != now;
                *told = now;
                changed
            });
            // Wake in time to stop before the lease can pass to another replica.
            let next = match held {
                Some((_, until)) => (started + interval).min(until),
                None => started + interval,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = shutdown.changed() => break,
            }
        }
        let _ = tell.send(None);
        if let Some((fence, _)) = held {
            match self
                .store
                .release_lease(job.as_str(), &self.holder, fence)
                .await
            {
                Ok(()) => {
                    tracing::info!(lease = job.as_str(), fence, "lease released");
                    self.record(job, |s| {
                        s.released += 1;
                        s.fence = None;
                    });
                }
                Err(e) => {
                    tracing::warn!(lease = job.as_str(), error = %e, "cannot release a lease; it expires");
                }
            }
        }
    }

    /// One claim or renewal, within a third of `ttl`: `None` when it failed (logged once
    /// until it works again), else whether this replica holds the lease, with its fence.
    async fn claim(&self, job: Singleton, failing: &mut bool) -> Option<Option<i64>> {
        let claim = self.store.claim_lease(job.as_str(), &self.holder, self.ttl);
        let problem = match tokio::time::timeout(self.ttl / 3, claim).await {
            Ok(Ok(fence)) => {
                if std::mem::take(failing) {
                    tracing::info!(lease = job.as_str(), "lease renewals work again");
                }
                return Some(fence);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "it timed out".to_owned(),
        };
        if !std::mem::replace(failing, true) {
            tracing::warn!(lease = job.as_str(), %problem, "cannot claim or renew a lease");
        }
        None
    }

    fn lose(&self, job: Singleton, why: &str) {
        tracing::warn!(lease = job.as_str(), holder = %self.holder, why, "lease lost; its work stops here");
        self.record(job, |s| {
            s.lost += 1;
            s.fence = None;
        });
    }

    /// Runs `work` (given the node's `shutdown`) whenever this replica holds `job`'s lease,
    /// and stops it the moment the lease is lost; until `shutdown` turns true.
    pub async fn run_while_held<F, Fut>(
        self: Arc<Self>,
        job: Singleton,
        shutdown: watch::Receiver<bool>,
        work: F,
    ) where
        F: Fn(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut lease = self.keep(job, shutdown.clone());
        let mut stopping = shutdown.clone();
        loop {
            let fence = tokio::select! {
                fence = lease.acquired() => match fence {
                    Some(fence) => fence,
                    None => return,
                },
                _ = stopping.changed() => return,
            };
            tokio::select! {
                _ = work(shutdown.clone()) => return,
                _ = lease.lost(fence) => {}
            }
        }
    }
}

/// Whether this replica holds one lease now.
#[derive(Debug, Clone)]
pub struct Lease {
    held: watch::Receiver<Option<i64>>,
}

impl Lease {
    /// The fence while this replica holds the lease.
    pub fn fence(&self) -> Option<i64> {
        *self.held.borrow()
    }

    pub fn held(&self) -> bool {
        self.fence().is_some()
    }

    /// Waits until this replica holds the lease and returns its fence; `None` when it never
    /// will (the node stops).
    pub async fn acquired(&mut self) -> Option<i64> {
        match self.held.wait_for(Option::is_some).await {
            Ok(fence) => *fence,
            Err(_) => None,
        }
    }

    /// Waits until this replica no longer holds the lease with `fence` (lost, or lost and
    /// taken again as a new holder).
    pub async fn lost(&mut self, fence: i64) {
        let _ = self.held.wait_for(|held| *held != Some(fence)).await;
    }
}
