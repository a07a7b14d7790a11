//! Notification of an expected breach (seed 001: "Bij verwachte overschrijding van de
//! (overeengekomen) verwerkingstijd, informeert Stichting MedMij de deelnemer hierover").
//!
//! When an open mutation has less than `sla.at_risk_werkdagen` left, the node queues one
//! notification per configured channel — in the database, once per mutation and channel —
//! and logs the event once. Deliveries are claimed before they are tried (so two replicas do
//! not both send), retried with exponential backoff, and survive a restart because the queue
//! is stored. A node killed between sending and recording may send once more after the
//! claim expires: at least once, never silently lost.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;

use super::{SlaError, SlaService};
use crate::config::NotifyConfig;
use crate::domain::{MutationRecord, Notification, NotificationChannel};

/// Deliveries tried per notification before the node gives up (logged as an error).
pub const MAX_ATTEMPTS: i64 = 12;
/// How long a claimed delivery is not tried by anyone else.
const CLAIM: Duration = Duration::minutes(5);
/// The first retry waits this long, each next one twice as long, at most `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::seconds(30);
const MAX_BACKOFF: Duration = Duration::hours(1);
/// A webhook or SMTP exchange takes at most this long.
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(20);
/// Stored errors are cut to this many characters.
const ERROR_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify.smtp_url is not usable: {0}")]
    Smtp(String),
    #[error("notify.webhook_url is not usable: {0}")]
    Webhook(String),
}

/// The configured channels' clients.
pub struct Delivery {
    webhook: Option<(reqwest::Client, String)>,
    email: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox, Mailbox)>,
}

/// What the webhook receives.
#[derive(Debug, Serialize)]
struct AtRisk<'a> {
    id: i64,
    list: &'a str,
    entry: &'a str,
    deelnemer: &'a str,
    reference: &'a str,
    deadline: DateTime<Utc>,
    werkdagen_left: f64,
}

impl Delivery {
    pub fn new(config: &NotifyConfig) -> Result<Self, NotifyError> {
        let webhook = match config.webhook_url.as_str() {
            "" => None,
            url => {
                let client = crate::tls::outgoing::public_client(DELIVERY_TIMEOUT)
                    .map_err(NotifyError::Webhook)?;
                Some((client, url.to_owned()))
            }
        };
        let email = match config.smtp_url.as_str() {
            "" => None,
            url => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| NotifyError::Smtp(e.to_string()))?
                    .timeout(Some(DELIVERY_TIMEOUT))
                    .build();
                let parse = |address: &str| {
                    address
                        .parse::<Mailbox>()
                        .map_err(|e| NotifyError::Smtp(format!("{address}: {e}")))
                };
                Some((
                    transport,
                    parse(&config.mail_from)?,
                    parse(&config.loket_address)?,
                ))
            }
        };
        Ok(Self { webhook, email })
    }

    /// The log channel always; the others when configured.
    pub fn channels(&self) -> Vec<NotificationChannel> {
        let mut channels = vec![NotificationChannel::Log];
        if self.webhook.is_some() {
            channels.push(NotificationChannel::Webhook);
        }
        if self.email.is_some() {
            channels.push(NotificationChannel::Email);
        }
        channels
    }

    async fn deliver(
        &self,
        channel: NotificationChannel,
        message: &AtRisk<'_>,
    ) -> Result<(), String> {
        match channel {
            NotificationChannel::Log => Ok(()),
            NotificationChannel::Webhook => {
                let (client, url) = self.webhook.as_ref().ok_or("no webhook is configured")?;
                let response = client
                    .post(url)
                    .json(message)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                match response.status().is_success() {
                    true => Ok(()),
                    false => Err(format!("the webhook answered {}", response.status())),
                }
            }
            NotificationChannel::Email => {
                let (transport, from, to) =
                    self.email.as_ref().ok_or("no SMTP relay is configured")?;
                let mail = Message::builder()
                    .from(from.clone())
                    .to(to.clone())
                    .subject(format!(
                        "Mutatie {} ({}) dreigt de SLA-termijn te overschrijden",
                        message.id, message.list
                    ))
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail_text(message))
                    .map_err(|e| e.to_string())?;
                transport
                    .send(mail)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

fn mail_text(m: &AtRisk<'_>) -> String {
    format!(
        "Mutatie {id} op de {list} (entry \"{entry}\") van deelnemer {deelnemer}, referentie \
         {reference}, moet uiterlijk {deadline} gepubliceerd zijn.\n\
         Resterende tijd: {left:.2} werkdag(en).\n\n\
         Informeer de deelnemer over de verwachte overschrijding (registratieprocessen, seed 001).\n",
        id = m.id,
        list = m.list,
        entry = m.entry,
        deelnemer = m.deelnemer,
        reference = m.reference,
        deadline = m
            .deadline
            .with_timezone(&chrono_tz::Europe::Amsterdam)
            .to_rfc3339(),
        left = m.werkdagen_left,
    )
}

/// The wait before the next attempt after `attempts` failed ones.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    (FIRST_BACKOFF * 2i32.pow(doublings)).min(MAX_BACKOFF)
}

/// An error as stored: one line, no control characters, bounded.
fn stored_error(e: &str) -> String {
    e.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_CHARS)
        .collect()
}

impl SlaService {
    /// Queues notifications for open mutations that became at risk.
    pub(super) async fn queue_at_risk(&self) -> Result<(), SlaError> {
        let now = self.clock.now();
        let channels = self.delivery.channels();
        // Only deadlines before the cutoff can be at risk: thousands of open mutations are
        // not each measured in werkdagen at every publication (issue 12).
        let cutoff = self.policy.at_risk_cutoff(now);
        for m in self.storage.open_deadlines(Some(cutoff)).await? {
            let Some(deadline) = m.deadline else {
                continue;
            };
            let standing = self.policy.standing(deadline, now);
            if !standing.expects_breach() {
                continue;
            }
            let left = standing.left();
            let prototype = Notification {
                mutation_id: m.id,
                channel: NotificationChannel::Log,
                created_at: now,
                deadline,
                werkdagen_left: left,
                attempts: 0,
                next_attempt_at: now,
                delivered_at: None,
                last_error: None,
            };
            if self
                .storage
                .queue_notifications(&prototype, &channels)
                .await?
            {
                tracing::warn!(
                    event = "sla_at_risk",
                    mutation = m.id,
                    list = %m.list,
                    deadline = %deadline,
                    werkdagen_left = left,
                    "a mutation is expected to breach its SLA deadline; the loket informs the deelnemer"
                );
            }
        }
        Ok(())
    }

    /// Tries every delivery that is due.
    pub(super) async fn deliver_due(&self) -> Result<(), SlaError> {
        let now = self.clock.now();
        let claimed = self
            .storage
            .claim_notifications(now, now + CLAIM, MAX_ATTEMPTS, 100)
            .await?;
        for n in claimed {
            let Some(m) = self.storage.mutation(n.mutation_id).await? else {
                continue;
            };
            let result = self.delivery.deliver(n.channel, &at_risk(&m, &n)).await;
            let at = self.clock.now();
            match &result {
                Ok(()) => tracing::info!(
                    mutation = n.mutation_id,
                    channel = n.channel.as_str(),
                    "SLA notification delivered"
                ),
                Err(e) if n.attempts >= MAX_ATTEMPTS => tracing::error!(
                    mutation = n.mutation_id,
                    channel = n.channel.as_str(),
                    attempts = n.attempts,
                    error = %stored_error(e),
                    "SLA notification not delivered; giving up"
                ),
                Err(e) => tracing::warn!(
                    mutation = n.mutation_id,
                    channel = n.channel.as_str(),
                    attempts = n.attempts,
                    error = %stored_error(e),
                    "SLA notification not delivered; retrying"
                ),
            }
            let error = result.as_ref().err().map(|e| stored_error(e));
            let outcome = match &error {
                None => Ok(()),
                Some(e) => Err((e.as_str(), at + backoff(n.attempts))),
            };
            self.storage.finish_notification(&n, at, outcome).await?;
        }
        Ok(())
    }

    /// A mutation's notifications and their deliveries (the admin API shows them).
    pub async fn notifications(&self, mutation_id: i64) -> Result<Vec<Notification>, SlaError> {
        Ok(self.storage.notifications(mutation_id).await?)
    }
}

fn at_risk<'a>(m: &'a MutationRecord, n: &Notification) -> AtRisk<'a> {
    AtRisk {
        id: m.id,
        list: m.list.as_str(),
        entry: &m.entry_key,
        deelnemer: &m.on_behalf_of,
        reference: &m.reference,
        deadline: n.deadline,
        werkdagen_left: n.werkdagen_left,
    }
}
