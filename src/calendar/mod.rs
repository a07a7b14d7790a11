//! Werkdagen (SPEC §8, seed 001's "2 werkdagen"): Monday to Friday in Europe/Amsterdam,
//! except the days of the Algemene termijnenwet, art. 3 — Nieuwjaarsdag, Goede Vrijdag (lid 2),
//! 2e Paasdag, Koningsdag (27 April; 26 April when the 27th is a Sunday), 5 mei, Hemelvaartsdag,
//! 2e Pinksterdag, 1e and 2e Kerstdag — the days "gelijkgesteld" by royal decree (lid 3,
//! `decrees.rs`), and the extra closed days an operator configures.
//!
//! Business time between two instants is the part of the interval that falls on werkdagen,
//! in days. A werkdag is a calendar day in Europe/Amsterdam, so the day of a DST change is
//! still one werkdag: each hour of a 23-hour day counts 1/23 of it. Knows nothing of HTTP or
//! SQL.

mod decrees;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Amsterdam;

pub use decrees::{DECREE_DAYS, DECREES};

/// The werkdagen calendar: the statutory days, the decree table and configured extra days.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Werkdagen {
    extra_closed: BTreeSet<NaiveDate>,
}

/// Seconds in a werkdag's worth of business time are counted per calendar day, so an answer
/// is exact to well below a second over years; `f64` keeps 15 digits.
const EPSILON_DAYS: f64 = 1e-9;

/// Easter Sunday of `year` (Gregorian; the anonymous algorithm of Meeus, Jones and Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a valid date")
}

/// Why a day is not a werkdag, if it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedDay {
    Weekend,
    /// A day of the Algemene termijnenwet, art. 3 lid 1 and 2.
    Feestdag(&'static str),
    /// A day "gelijkgesteld" by royal decree (art. 3 lid 3).
    Gelijkgesteld,
    /// Closed by this node's configuration.
    Configured,
}

impl Werkdagen {
    pub fn new(extra_closed: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            extra_closed: extra_closed.into_iter().collect(),
        }
    }

    /// The last day the decree table covers: after it, days a decree will equate with a
    /// feestdag are not known yet (`calendar_covered_until`).
    pub fn covered_until(&self) -> NaiveDate {
        decrees::COVERED_UNTIL
    }

    /// Names this calendar, stored with every deadline it computes: the Algemene termijnenwet,
    /// the decree table by the last day it covers, and the configured extra days by count
    /// and digest — e.g. `termijnenwet+decrees-2028-12-31+extra-2-5f1c0a9e`.
    pub fn version(&self) -> String {
        let mut name = format!("termijnenwet+decrees-{}", self.covered_until());
        if !self.extra_closed.is_empty() {
            use sha2::{Digest, Sha256};
            let mut digest = Sha256::new();
            for day in &self.extra_closed {
                digest.update(day.to_string().as_bytes());
                digest.update(b"\n");
            }
            let hex: String = digest.finalize()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            name.push_str(&format!("+extra-{}-{hex}", self.extra_closed.len()));
        }
        name
    }

    /// The statutory feestdag on `date`, if any.
    pub fn feestdag(date: NaiveDate) -> Option<&'static str> {
        let year = date.year();
        let easter = easter_sunday(year);
        let day = |month, day| NaiveDate::from_ymd_opt(year, month, day);
        let koningsdag = match day(4, 27).map(|d| d.weekday()) {
            Some(Weekday::Sun) => day(4, 26),
            _ => day(4, 27),
        };
        let from_easter = |days: i64| easter.checked_add_signed(chrono::Duration::days(days));
        [
            (day(1, 1), "Nieuwjaarsdag"),
            (from_easter(-2), "Goede Vrijdag"),
            (from_easter(1), "2e Paasdag"),
            (koningsdag, "Koningsdag"),
            (day(5, 5), "Bevrijdingsdag"),
            (from_easter(39), "Hemelvaartsdag"),
            (from_easter(50), "2e Pinksterdag"),
            (day(12, 25), "1e Kerstdag"),
            (day(12, 26), "2e Kerstdag"),
        ]
        .into_iter()
        .find(|(d, _)| *d == Some(date))
        .map(|(_, name)| name)
    }

    /// Why `date` is not a werkdag; `None` when it is one.
    pub fn closed(&self, date: NaiveDate) -> Option<ClosedDay> {
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            Some(ClosedDay::Weekend)
        } else if let Some(name) = Self::feestdag(date) {
            Some(ClosedDay::Feestdag(name))
        } else if DECREE_DAYS.contains(&date) {
            Some(ClosedDay::Gelijkgesteld)
        } else if self.extra_closed.contains(&date) {
            Some(ClosedDay::Configured)
        } else {
            None
        }
    }

    pub fn is_werkdag(&self, date: NaiveDate) -> bool {
        self.closed(date).is_none()
    }

    /// The werkdagen between two instants (0 when `to` is not after `from`).
    pub fn business_time(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        if to <= from {
            return 0.0;
        }
        let mut total = 0.0;
        let mut date = local_date(from);
        loop {
            let (start, end) = day_bounds(date);
            if start >= to {
                break;
            }
            if self.is_werkdag(date) {
                let overlap = (end.min(to) - start.max(from)).num_milliseconds().max(0);
                total += overlap as f64 / (end - start).num_milliseconds() as f64;
            }
            date = date + Days::new(1);
        }
        total
    }

    /// The instant at which `days` werkdagen have passed since `from` (the inverse of
    /// `business_time`; a deadline). A deadline that ends exactly where a werkdag ends is that
    /// day's end, not the start of the next werkdag.
    pub fn add_business_time(&self, from: DateTime<Utc>, days: f64) -> DateTime<Utc> {
        let mut left = days.max(0.0);
        let mut date = local_date(from);
        loop {
            let (start, end) = day_bounds(date);
            if self.is_werkdag(date) {
                let begin = start.max(from);
                let length = (end - start).num_milliseconds() as f64;
                let available = (end - begin).num_milliseconds() as f64 / length;
                if left <= available + EPSILON_DAYS {
                    let millis = (left * length).round() as i64;
                    return (begin + chrono::Duration::milliseconds(millis)).min(end);
                }
                left -= available;
            }
            date = date + Days::new(1);
        }
    }
}

/// The calendar day in Europe/Amsterdam that `at` falls on.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Amsterdam).date_naive()
}

/// The first instant of a local day in Europe/Amsterdam (midnight never falls in a DST gap
/// there, but take the earliest instant when it would).
pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    Amsterdam
        .from_local_datetime(&midnight)
        .earliest()
        .expect("midnight exists in Europe/Amsterdam")
        .with_timezone(&Utc)
}

/// [start, end) of a local day in UTC.
fn day_bounds(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (start_of(date), start_of(date + Days::new(1)))
}

#[cfg(test)]
mod tests;
