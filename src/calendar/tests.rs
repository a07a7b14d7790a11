use chrono::{DateTime, NaiveDate, Utc};
use proptest::prelude::*;

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// An instant given in Amsterdam local time, e.g. "2026-04-02T09:00:00+02:00".
fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn easter_is_computed() {
    for (year, month, day) in [
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2027, 3, 28),
        (2038, 4, 25),
    ] {
        assert_eq!(easter_sunday(year), date(year, month, day), "{year}");
    }
}

#[test]
fn the_statutory_days_and_decrees() {
    let w = Werkdagen::default();
    // Koningsdag on a Sunday (2025, 2031) moves to the Saturday before.
    assert_eq!(Werkdagen::feestdag(date(2025, 4, 26)), Some("Koningsdag"));
    assert_eq!(Werkdagen::feestdag(date(2025, 4, 27)), None);
    assert_eq!(Werkdagen::feestdag(date(2031, 4, 26)), Some("Koningsdag"));
    assert_eq!(Werkdagen::feestdag(date(2026, 4, 27)), Some("Koningsdag"));
    // 5 mei on a weekday, in a year that is no lustrum (2026: Tuesday).
    assert_eq!(
        w.closed(date(2026, 5, 5)),
        Some(ClosedDay::Feestdag("Bevrijdingsdag"))
    );
    // Decree days and an ordinary Friday.
    assert_eq!(w.closed(date(2026, 1, 2)), Some(ClosedDay::Gelijkgesteld));
    assert_eq!(w.closed(date(2026, 5, 15)), Some(ClosedDay::Gelijkgesteld));
    assert!(w.is_werkdag(date(2026, 5, 22)));
    assert_eq!(w.closed(date(2026, 11, 28)), Some(ClosedDay::Weekend));
    let extra = Werkdagen::new([date(2026, 11, 27)]);
    assert_eq!(
        extra.closed(date(2026, 11, 27)),
        Some(ClosedDay::Configured)
    );
    assert_eq!(w.covered_until(), date(2028, 12, 31));
}

#[test]
fn worked_examples() {
    let w = Werkdagen::default();
    // Thursday before Easter 2026 09:00 → Tuesday after, 09:00, is one werkdag: Goede Vrijdag,
    // the weekend and 2e Paasdag do not count. Two werkdagen end on Wednesday 09:00.
    let thursday = at("2026-04-02T09:00:00+02:00");
    let tuesday = at("2026-04-07T09:00:00+02:00");
    assert!(close(w.business_time(thursday, tuesday), 1.0));
    assert_eq!(w.add_business_time(thursday, 1.0), tuesday);
    assert_eq!(
        w.add_business_time(thursday, 2.0),
        at("2026-04-08T09:00:00+02:00")
    );
    // Christmas into New Year 2025/2026: Wednesday 24 Dec 12:00 + 2 werkdagen: the 25th and
    // 26th are feestdagen, the 27th and 28th a weekend: Monday 29th and then Tuesday 30th 12:00.
    assert_eq!(
        w.add_business_time(at("2025-12-24T12:00:00+01:00"), 2.0),
        at("2025-12-30T12:00:00+01:00")
    );
    // 31 Dec 2025 12:00 + 1 werkdag: 1 Jan is Nieuwjaarsdag, 2 Jan 2026 a decree day, then the
    // weekend: Monday 5 Jan 12:00.
    assert_eq!(
        w.add_business_time(at("2025-12-31T12:00:00+01:00"), 1.0),
        at("2026-01-05T12:00:00+01:00")
    );
    // A Saturday submission starts counting on Monday at midnight.
    assert_eq!(
        w.add_business_time(at("2026-11-28T15:00:00+01:00"), 0.5),
        at("2026-11-30T12:00:00+01:00")
    );
    // A configured extra day is skipped too.
    let extra = Werkdagen::new([date(2026, 11, 30)]);
    assert_eq!(
        extra.add_business_time(at("2026-11-28T15:00:00+01:00"), 0.5),
        at("2026-12-01T12:00:00+01:00")
    );
}

#[test]
fn a_dst_day_is_one_werkdag() {
    let w = Werkdagen::default();
    // Dutch DST changes fall on Sundays (29 March 2026: 23 hours). A span across one is
    // counted in local days: Friday 27 March 00:00 (+01:00) → Monday 30 March 00:00 (+02:00)
    // is exactly one werkdag, the Friday.
    assert!(close(
        w.business_time(
            at("2026-03-27T00:00:00+01:00"),
            at("2026-03-30T00:00:00+02:00")
        ),
        1.0
    ));
    // Half of a local day stays half a werkdag whatever the offset.
    assert!(close(
        w.business_time(
            at("2026-03-30T00:00:00+02:00"),
            at("2026-03-30T12:00:00+02:00")
        ),
        0.5
    ));
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2020-01-01 to 2035-12-31.
    (1_577_836_800i64..2_082_758_400i64).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

proptest! {
    #[test]
    fn business_time_is_monotonic_and_additive(a in instant(), b in instant(), c in instant()) {
        let w = Werkdagen::default();
        let mut t = [a, b, c];
        t.sort();
        let [a, b, c] = t;
        let (ab, bc, ac) = (w.business_time(a, b), w.business_time(b, c), w.business_time(a, c));
        prop_assert!(ab >= 0.0 && bc >= 0.0);
        prop_assert!(ac + 1e-9 >= ab);
        prop_assert!((ab + bc - ac).abs() < 1e-6, "{ab} + {bc} != {ac}");
    }

    #[test]
    fn a_deadline_is_its_business_time_later(from in instant(), tenths in 0u32..200) {
        let w = Werkdagen::default();
        let days = f64::from(tenths) / 10.0;
        let deadline = w.add_business_time(from, days);
        prop_assert!(deadline >= from);
        let measured = w.business_time(from, deadline);
        prop_assert!((measured - days).abs() < 1e-6, "{days} werkdagen from {from}: {deadline} measures {measured}");
    }
}

#[test]
fn the_version_names_the_decree_table_and_the_extra_days() {
    assert_eq!(
        Werkdagen::default().version(),
        "termijnenwet+decrees-2028-12-31"
    );
    let one = Werkdagen::new([date(2026, 12, 24)]).version();
    let other = Werkdagen::new([date(2026, 12, 31)]).version();
    assert!(one.starts_with("termijnenwet+decrees-2028-12-31+extra-1-"));
    assert_ne!(one, other);
}
