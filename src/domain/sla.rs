//! A mutation's place in the 2-werkdagen SLA (SPEC §8, seed 001): the deadline set when it
//! was accepted, and — once it is published, rejected or withdrawn — its outcome.

use chrono::{DateTime, Utc};

/// How a completed mutation counts for the SLA.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SlaOutcome {
    /// Published no later than its deadline.
    Met,
    /// Published after its deadline.
    Breached,
    /// Rejected or withdrawn: not a valid mutation the SLA measures.
    Excluded,
}

impl SlaOutcome {
    pub const ALL: [SlaOutcome; 3] = [Self::Met, Self::Breached, Self::Excluded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Breached => "breached",
            Self::Excluded => "excluded",
        }
    }
}

impl std::str::FromStr for SlaOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown SLA outcome \"{s}\""))
    }
}

/// The deadline a mutation got when it was accepted, and the calendar that computed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SlaDeadline {
    pub deadline: DateTime<Utc>,
    /// Which werkdagen calendar counted it (`Werkdagen::version`), so a later change of the
    /// decree table or of configured closed days does not silently move old deadlines.
    pub calendar: String,
}

/// How a completed mutation counted, stored once it completed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlaCompletion {
    pub outcome: SlaOutcome,
    /// When it was published, rejected or withdrawn.
    pub completed_at: DateTime<Utc>,
    /// Business time from the start of the SLA clock to publication, in werkdagen (published
    /// mutations only), rounded to a millionth of a werkdag.
    pub werkdagen: Option<f64>,
    /// Why an excluded mutation does not count.
    pub excluded_reason: Option<String>,
}

/// A mutation's SLA record: `deadline` is `None` only for a mutation stored before the SLA
/// was (until the node backfills it at start), `completion` until it completes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MutationSla {
    #[serde(flatten)]
    pub deadline: Option<SlaDeadline>,
    #[serde(flatten)]
    pub completion: Option<SlaCompletion>,
}

/// Rounds werkdagen to a millionth (0.0864 s), so that publication exactly at a deadline of
/// 2.0 werkdagen falls in the histogram bucket `le="2"`.
pub fn round_werkdagen(werkdagen: f64) -> f64 {
    (werkdagen * 1e6).round() / 1e6
}

/// Where a notification of an expected breach goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationChannel {
    /// The structured log event: written by the node that queues the notification.
    Log,
    /// A JSON POST to the configured URL.
    Webhook,
    /// A mail to the loket address over SMTP.
    Email,
}

impl NotificationChannel {
    pub const ALL: [NotificationChannel; 3] = [Self::Log, Self::Webhook, Self::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }
}

impl std::str::FromStr for NotificationChannel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown notification channel \"{s}\""))
    }
}

/// One notification of an expected breach on one channel, with its deliveries so far.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    pub mutation_id: i64,
    pub channel: NotificationChannel,
    pub created_at: DateTime<Utc>,
    /// The deadline and the werkdagen left before it, when the mutation became at risk.
    pub deadline: DateTime<Utc>,
    pub werkdagen_left: f64,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed (cleaned of control characters, bounded).
    pub last_error: Option<String>,
}
