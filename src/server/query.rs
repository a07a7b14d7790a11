//! Query-string and path values the admin handlers share, parsed in one place. Every
//! refusal is a 400 that says what was expected.

use chrono::Duration;

use super::error::ApiError;
use crate::domain::{ListKind, is_deceptive};

/// Bounds on what one listing returns.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// The longest age asked about: a century.
const MAX_AGE_SECONDS: i64 = 100 * 365 * 86_400;

pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// An age such as `90s`, `15m`, `36h` or `2d`.
pub fn age(text: &str, name: &str) -> Result<Duration, ApiError> {
    let invalid = || {
        bad_request(format!(
            "{name} must be a number with s, m, h or d, e.g. 2d"
        ))
    };
    let units = [('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)];
    let (number, seconds) = units
        .iter()
        .find_map(|&(unit, seconds)| text.strip_suffix(unit).map(|n| (n, seconds)))
        .ok_or_else(invalid)?;
    let n: i64 = number.parse().map_err(|_| invalid())?;
    n.checked_mul(seconds)
        .filter(|s| (0..=MAX_AGE_SECONDS).contains(s))
        .map(Duration::seconds)
        .ok_or_else(invalid)
}

/// How many records a listing returns: 1 to 1000, 100 when not asked.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

/// The longest text filter a listing takes.
const MAX_FILTER_CHARS: usize = 200;

/// A text filter (a certificate subject, an action, an object): bounded and printable, so
/// that it never reaches the database as something it cannot store or compare.
pub fn text_filter(value: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    match value {
        Some(v)
            if v.chars().count() > MAX_FILTER_CHARS
                || v.chars().any(|c| c.is_control() || is_deceptive(c)) =>
        {
            Err(bad_request(format!(
                "{name} must be at most {MAX_FILTER_CHARS} printable characters"
            )))
        }
        v => Ok(v),
    }
}

pub fn list_name(name: &str) -> Result<ListKind, ApiError> {
    name.parse()
        .map_err(|e: crate::domain::UnknownList| bad_request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_a_unit_and_stay_in_range() {
        assert_eq!(age("90s", "a").unwrap(), Duration::seconds(90));
        assert_eq!(age("2d", "a").unwrap(), Duration::days(2));
        for bad in [
            "",
            "d",
            "2",
            "2w",
            "-1h",
            "1é",
            "é",
            "99999999999999d",
            "1.5h",
        ] {
            assert!(age(bad, "a").is_err(), "{bad:?}");
        }
    }
}
