//! The SLA report of a period (`stelselnode sla report`, `GET /sla/report`): per list the
//! counts and compliance, every breach with its timeline, every exclusion with its reason,
//! and the calendar versions that computed the deadlines.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use super::period::Period;
use super::{SLA_TARGET, SlaError, SlaService};
use crate::calendar::start_of;
use crate::domain::{ListKind, MutationRecord, SlaOutcome};

#[derive(Debug, Clone, Serialize)]
pub struct SlaReport {
    /// The period: whole days in Europe/Amsterdam, both included; mutations count on the day
    /// they completed (published, rejected or withdrawn).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub target: f64,
    /// The calendar versions the period's deadlines were computed with.
    pub calendars: BTreeSet<String>,
    pub lists: Vec<ListReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub list: ListKind,
    pub met: u64,
    pub breached: u64,
    pub excluded: u64,
    /// met / (met + breached); `None` when no valid mutation completed (`Compliance`).
    pub compliance: Option<f64>,
    pub breaches: Vec<ReportedMutation>,
    pub exclusions: Vec<ReportedMutation>,
}

/// One mutation's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct ReportedMutation {
    pub id: i64,
    pub urgent: bool,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    pub completed_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub werkdagen: Option<f64>,
    pub calendar: Option<String>,
    pub reason: Option<String>,
}

impl ReportedMutation {
    fn of(m: &MutationRecord) -> Option<Self> {
        let completion = m.sla.completion.as_ref()?;
        Some(Self {
            id: m.id,
            urgent: m.urgent,
            submitted_at: m.submitted_at,
            decided_at: m.decided_at.or(m.withdrawn_at),
            published_at: m.published_at,
            completed_at: completion.completed_at,
            deadline: m.sla.deadline.as_ref().map(|d| d.deadline),
            werkdagen: completion.werkdagen,
            calendar: m.sla.deadline.as_ref().map(|d| d.calendar.clone()),
            reason: completion.excluded_reason.clone(),
        })
    }
}

impl SlaReport {
    pub fn of(from: NaiveDate, to: NaiveDate, completed: &[MutationRecord]) -> Self {
        let mut period = Period::default();
        for m in completed {
            if let Some(c) = &m.sla.completion {
                period.count(m.list, c.outcome);
            }
        }
        let lists = ListKind::ALL
            .into_iter()
            .map(|list| {
                let of_outcome = |outcome: SlaOutcome| -> Vec<ReportedMutation> {
                    completed
                        .iter()
                        .filter(|m| m.list == list)
                        .filter(|m| m.sla.completion.as_ref().map(|c| c.outcome) == Some(outcome))
                        .filter_map(ReportedMutation::of)
                        .collect()
                };
                let outcomes = period.list(list);
                ListReport {
                    list,
                    met: outcomes.met,
                    breached: outcomes.breached,
                    excluded: outcomes.excluded,
                    compliance: outcomes.compliance().ratio(),
                    breaches: of_outcome(SlaOutcome::Breached),
                    exclusions: of_outcome(SlaOutcome::Excluded),
                }
            })
            .collect();
        Self {
            from,
            to,
            target: SLA_TARGET,
            calendars: completed
                .iter()
                .filter_map(|m| m.sla.deadline.as_ref().map(|d| d.calendar.clone()))
                .collect(),
            lists,
        }
    }

    /// One CSV table: a `summary` row per list, then a `breach` or `exclusion` row per
    /// mutation. Text fields are quoted, and a leading `=`, `+`, `-` or `@` is neutralised so
    /// that a spreadsheet does not run a reason as a formula.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "record,list,met,breached,excluded,compliance,id,urgent,submitted_at,decided_at,\
             published_at,deadline,werkdagen,calendar,reason\n",
        );
        let instant = |at: Option<DateTime<Utc>>| at.map(|t| t.to_rfc3339()).unwrap_or_default();
        for l in &self.lists {
            let compliance = l.compliance.map(|c| format!("{c:.4}")).unwrap_or_default();
            out.push_str(&format!(
                "summary,{},{},{},{},{compliance},,,,,,,,,\n",
                l.list, l.met, l.breached, l.excluded
            ));
            for (record, rows) in [("breach", &l.breaches), ("exclusion", &l.exclusions)] {
                for m in rows {
                    let fields = [
                        record.to_owned(),
                        l.list.to_string(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        m.id.to_string(),
                        m.urgent.to_string(),
                        instant(Some(m.submitted_at)),
                        instant(m.decided_at),
                        instant(m.published_at),
                        instant(m.deadline),
                        m.werkdagen.map(|w| format!("{w:.6}")).unwrap_or_default(),
                        csv_text(m.calendar.as_deref().unwrap_or_default()),
                        csv_text(m.reason.as_deref().unwrap_or_default()),
                    ];
                    out.push_str(&fields.join(","));
                    out.push('\n');
                }
            }
        }
        out
    }
}

pub(super) fn csv_text(value: &str) -> String {
    let value = match value.starts_with(['=', '+', '-', '@']) {
        true => format!("'{value}"),
        false => value.to_owned(),
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the period ends ({to}) before it starts ({from})")]
    EmptyPeriod { from: NaiveDate, to: NaiveDate },
    #[error("a report covers at most 366 days")]
    TooLong,
    #[error(transparent)]
    Sla(#[from] SlaError),
}

impl SlaService {
    /// The report of the mutations that completed from `from` to `to` (whole days).
    pub async fn report(&self, from: NaiveDate, to: NaiveDate) -> Result<SlaReport, ReportError> {
        if to < from {
            return Err(ReportError::EmptyPeriod { from, to });
        }
        if (to - from).num_days() > 366 {
            return Err(ReportError::TooLong);
        }
        self.settle_backlog().await?;
        let completed = self
            .storage
            .completed_mutations(start_of(from), start_of(to + Days::new(1)))
            .await
            .map_err(SlaError::from)?;
        Ok(SlaReport::of(from, to, &completed))
    }
}
