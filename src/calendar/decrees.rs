//! Days "gelijkgesteld" with an algemeen erkende feestdag by royal decree under art. 3 lid 3
//! of the Algemene termijnenwet: a day between a feestdag and a weekend, so that a term does
//! not end on it. Each table row names its decree; a new decree means a new row and a later
//! `COVERED_UNTIL`.

use chrono::NaiveDate;

/// The decrees the table is taken from.
pub const DECREES: [&str; 2] = [
    "Besluit gelijkstelling van 28 april 2023, 19 mei 2023, 10 mei 2024, 27 december 2024 en \
     30 mei 2025 met een algemeen erkende feestdag",
    "Besluit gelijkstelling van 2 januari 2026, 15 mei 2026, 7 mei 2027, 28 april 2028 en \
     26 mei 2028 met een algemeen erkende feestdag",
];

const fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("a decree day is a valid date"),
    }
}

/// The days, in order.
pub const DECREE_DAYS: [NaiveDate; 10] = [
    // DECREES[0]
    day(2023, 4, 28),
    day(2023, 5, 19),
    day(2024, 5, 10),
    day(2024, 12, 27),
    day(2025, 5, 30),
    // DECREES[1]
    day(2026, 1, 2),
    day(2026, 5, 15),
    day(2027, 5, 7),
    day(2028, 4, 28),
    day(2028, 5, 26),
];

/// The last day the decrees cover: later years have no decree yet.
pub const COVERED_UNTIL: NaiveDate = day(2028, 12, 31);
