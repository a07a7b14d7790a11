use chrono::{DateTime, Utc};

use super::period::Period;
use super::*;
use crate::domain::{ListKind, Operation};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn policy() -> SlaPolicy {
    SlaPolicy::new(&SlaConfig::default())
}

fn record(submitted: &str) -> MutationRecord {
    MutationRecord {
        id: 7,
        list: ListKind::Zal,
        entry_key: "umcharderwijk@medmij".into(),
        operation: Operation::Delete,
        entry: None,
        base_version: 1,
        on_behalf_of: "Ziekenhuis".into(),
        reference: "T-1".into(),
        urgent: false,
        agreed_deadline: None,
        effective_from: None,
        status: MutationStatus::Submitted,
        submitted_by: "ab".into(),
        submitted_by_subject: "CN=loket-1".into(),
        submitted_at: at(submitted),
        decided_by: None,
        decided_by_subject: None,
        decided_at: None,
        rejection_reason: None,
        withdrawn_at: None,
        applied_at: None,
        published_volgnummer: None,
        published_at: None,
        sla: MutationSla::default(),
    }
}

fn published(mut r: MutationRecord, when: &str) -> MutationRecord {
    r.status = MutationStatus::Published;
    r.published_at = Some(at(when));
    r
}

#[test]
fn a_deadline_is_two_werkdagen_over_easter_and_the_agreed_one_when_urgent() {
    let p = policy();
    // Thursday before Easter 2026, 14:00: Goede Vrijdag and 2e Paasdag are closed.
    let submitted = at("2026-04-02T14:00:00+02:00");
    let d = p.deadline(submitted, None, false, None);
    assert_eq!(d.deadline, at("2026-04-08T14:00:00+02:00"));
    assert_eq!(d.calendar, "termijnenwet+decrees-2028-12-31");
    let agreed = at("2026-04-02T18:00:00+02:00");
    assert_eq!(
        p.deadline(submitted, None, true, Some(agreed)).deadline,
        agreed
    );
    // Not urgent: an agreed deadline does not apply.
    assert_eq!(p.deadline(submitted, None, false, Some(agreed)), d);
    // A later effective_from starts the clock.
    let later = at("2026-04-09T09:00:00+02:00");
    assert_eq!(
        p.deadline(submitted, Some(later), false, None).deadline,
        at("2026-04-13T09:00:00+02:00")
    );
}

#[test]
fn publication_at_the_deadline_meets_it_and_a_moment_later_breaches() {
    let p = policy();
    let open = record("2026-11-23T10:00:00+01:00");
    let on_time = p.settle(&published(open.clone(), "2026-11-25T10:00:00+01:00"));
    let c = on_time.completion.unwrap();
    assert_eq!(c.outcome, SlaOutcome::Met);
    assert_eq!(c.werkdagen, Some(2.0));
    let late = p.settle(&published(open.clone(), "2026-11-25T10:00:01+01:00"));
    assert_eq!(late.completion.unwrap().outcome, SlaOutcome::Breached);
    // Still open: a deadline, no outcome.
    let pending = p.settle(&open);
    assert!(pending.deadline.is_some() && pending.completion.is_none());
}

#[test]
fn rejected_and_withdrawn_mutations_are_excluded_with_the_reason() {
    let p = policy();
    let mut rejected = record("2026-11-23T10:00:00+01:00");
    rejected.status = MutationStatus::Rejected;
    rejected.decided_at = Some(at("2026-11-24T10:00:00+01:00"));
    rejected.rejection_reason = Some("dubbele aanvraag".into());
    let c = p.settle(&rejected).completion.unwrap();
    assert_eq!(c.outcome, SlaOutcome::Excluded);
    assert_eq!(
        c.excluded_reason.as_deref(),
        Some("rejected: dubbele aanvraag")
    );
    assert_eq!(c.werkdagen, None);
    let mut withdrawn = record("2026-11-23T10:00:00+01:00");
    withdrawn.status = MutationStatus::Withdrawn;
    withdrawn.withdrawn_at = Some(at("2026-11-23T11:00:00+01:00"));
    let c = p.settle(&withdrawn).completion.unwrap();
    assert_eq!(c.completed_at, at("2026-11-23T11:00:00+01:00"));
    assert_eq!(
        c.excluded_reason.as_deref(),
        Some("withdrawn by the submitter")
    );
}

#[test]
fn time_left_is_negative_once_overdue_and_skips_the_weekend() {
    let p = policy();
    let deadline = at("2026-11-27T12:00:00+01:00"); // a Friday
    let left = p.werkdagen_left(deadline, at("2026-11-27T00:00:00+01:00"));
    assert!((left - 0.5).abs() < 1e-9);
    // Monday 00:00: the weekend does not count.
    let late = p.werkdagen_left(deadline, at("2026-11-30T00:00:00+01:00"));
    assert!((late + 0.5).abs() < 1e-9);
}

#[test]
fn the_budget_and_the_projection_of_a_period() {
    let mut period = Period::default();
    for _ in 0..38 {
        period.count(ListKind::Zal, SlaOutcome::Met);
    }
    period.count(ListKind::Zal, SlaOutcome::Breached);
    period.count(ListKind::Gnl, SlaOutcome::Breached);
    period.count(ListKind::Gnl, SlaOutcome::Excluded);
    assert_eq!(period.list(ListKind::Gnl).excluded, 1);
    let compliance = period.compliance().ratio().unwrap();
    assert!(
        (compliance - 0.95).abs() < 1e-12,
        "excluded ones do not count"
    );
    // 5 % of 40 is 2 breaches, both spent.
    assert!(period.budget_remaining().abs() < 1e-12);
    assert!(period.budget_remaining_ratio().abs() < 1e-12);
    period.open_met = 9;
    period.open_breached = 1;
    let projected = period.projected_compliance().ratio().unwrap();
    assert!((projected - 47.0 / 50.0).abs() < 1e-12);
    // Nothing judged: no compliance for the report, 1 for a gauge.
    let empty = Period::default();
    assert_eq!(empty.compliance().ratio(), None);
    assert_eq!(empty.compliance().or_vacuous(), 1.0);
    assert_eq!(empty.list(ListKind::Ocl).compliance().ratio(), None);
}

#[test]
fn the_report_csv_quotes_text_and_neutralises_formulas() {
    let p = policy();
    let mut rejected = record("2026-11-23T10:00:00+01:00");
    rejected.status = MutationStatus::Rejected;
    rejected.decided_at = Some(at("2026-11-24T10:00:00+01:00"));
    rejected.rejection_reason = Some("=HYPERLINK(\"x\")".into());
    rejected.sla = p.settle(&rejected);
    let report = SlaReport::of(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        &[rejected],
    );
    let csv = report.to_csv();
    assert!(
        csv.contains(",\"rejected: =HYPERLINK(\"\"x\"\")\"\n"),
        "{csv}"
    );
    assert_eq!(report::csv_text("=1+1"), "\"'=1+1\"");
    assert!(csv.contains("summary,zal,0,0,1,,"), "{csv}");
}

proptest::proptest! {
    /// The at-risk query asks storage only for deadlines before the cutoff: it may return
    /// more than is at risk, never less.
    #[test]
    fn every_deadline_at_risk_lies_before_the_cutoff(
        now_offset in 0i64..400 * 86_400,
        ahead in -10 * 86_400i64..20 * 86_400,
    ) {
        let policy = policy();
        let now = at("2026-01-01T00:00:00Z") + chrono::Duration::seconds(now_offset);
        let deadline = now + chrono::Duration::seconds(ahead);
        if policy.werkdagen_left(deadline, now) < policy.at_risk_werkdagen {
            proptest::prop_assert!(deadline < policy.at_risk_cutoff(now));
        }
    }
}
