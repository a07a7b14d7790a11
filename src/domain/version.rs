//! The two header values of every list: Volgnummer and Tijdstempel.

use std::fmt;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::violation::{InvalidValue, Rule};

/// `Volgnummer`: the strictly increasing sequence number of a list's versions
/// (`xs:positiveInteger`; we bound it to what a database BIGINT holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Volgnummer(i64);

impl Volgnummer {
    pub const FIRST: Volgnummer = Volgnummer(1);

    pub fn new(value: i64) -> Result<Self, InvalidValue> {
        if value < 1 {
            return Err(InvalidValue::new(
                Rule::Range,
                format!("a Volgnummer is a positive integer, not {value}"),
            ));
        }
        Ok(Self(value))
    }

    /// Parses the XML text form: decimal digits only.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new(
                Rule::Pattern,
                format!("a Volgnummer is written as decimal digits, not \"{text}\""),
            ));
        }
        let value = text.parse::<i64>().map_err(|_| {
            InvalidValue::new(Rule::Range, format!("the Volgnummer {text} is too large"))
        })?;
        Self::new(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The Volgnummer that follows this one.
    pub fn next(self) -> Volgnummer {
        // i64::MAX versions cannot be reached at one publication per second in this universe.
        Volgnummer(self.0 + 1)
    }
}

impl TryFrom<i64> for Volgnummer {
    type Error = InvalidValue;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Volgnummer> for i64 {
    fn from(value: Volgnummer) -> i64 {
        value.0
    }
}

impl fmt::Display for Volgnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `Tijdstempel`: an instant in UTC, kept to the microsecond (what both databases store), and
/// always written with `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "DateTime<Utc>", into = "DateTime<Utc>")]
pub struct Tijdstempel(DateTime<Utc>);

impl Tijdstempel {
    pub fn new(instant: DateTime<Utc>) -> Self {
        Self(instant.trunc_subsecs(6))
    }

    /// Parses `xs:dateTime` as the lists use it: with a time zone (`Z` or an offset), which
    /// is converted to UTC. A value without a zone is ambiguous and refused.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.chars().count() < 20 {
            return Err(InvalidValue::new(
                Rule::Pattern,
                format!(
                    "\"{text}\" is too short for a Tijdstempel (at least 20 characters, with a time zone)"
                ),
            ));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self::new(t.with_timezone(&Utc)))
            .map_err(|e| {
                InvalidValue::new(
                    Rule::Pattern,
                    format!("\"{text}\" is not a date-time with a time zone: {e}"),
                )
            })
    }

    pub fn instant(self) -> DateTime<Utc> {
        self.0
    }

    /// The XML form: UTC with `Z`, fractional seconds only when there are any.
    pub fn to_xml(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

impl From<DateTime<Utc>> for Tijdstempel {
    fn from(instant: DateTime<Utc>) -> Self {
        Self::new(instant)
    }
}

impl From<Tijdstempel> for DateTime<Utc> {
    fn from(value: Tijdstempel) -> Self {
        value.0
    }
}

impl fmt::Display for Tijdstempel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn volgnummer_is_positive_decimal() {
        assert_eq!(Volgnummer::parse("0").unwrap_err().rule, Rule::Range);
        assert_eq!(Volgnummer::parse("-1").unwrap_err().rule, Rule::Pattern);
        assert_eq!(Volgnummer::parse(" 1").unwrap_err().rule, Rule::Pattern);
        assert_eq!(
            Volgnummer::parse("99999999999999999999").unwrap_err().rule,
            Rule::Range
        );
        assert_eq!(Volgnummer::parse("28654").unwrap().get(), 28654);
        assert_eq!(Volgnummer::FIRST.next().get(), 2);
    }

    #[test]
    fn tijdstempel_converts_offsets_to_utc() {
        let t = Tijdstempel::parse("2018-04-16T10:43:41+01:00").unwrap();
        assert_eq!(t.to_xml(), "2018-04-16T09:43:41Z");
        assert_eq!(
            Tijdstempel::parse("2018-04-16T12:56:33Z").unwrap().to_xml(),
            "2018-04-16T12:56:33Z"
        );
        assert_eq!(
            Tijdstempel::parse("2018-04-16T12:56:33.250Z")
                .unwrap()
                .to_xml(),
            "2018-04-16T12:56:33.250Z"
        );
    }

    #[test]
    fn tijdstempel_needs_a_zone() {
        assert_eq!(
            Tijdstempel::parse("2018-04-16T12:56:33").unwrap_err().rule,
            Rule::Pattern
        );
        assert_eq!(
            Tijdstempel::parse("2018-04-16T12:56:33.5")
                .unwrap_err()
                .rule,
            Rule::Pattern
        );
        assert_eq!(
            Tijdstempel::parse("16-04-2018 12:56:33 +0100")
                .unwrap_err()
                .rule,
            Rule::Pattern
        );
    }

    proptest! {
        #[test]
        fn tijdstempel_round_trips(micros in 0i64..4_102_444_800_000_000) {
            let t = Tijdstempel::new(DateTime::from_timestamp_micros(micros).unwrap());
            prop_assert_eq!(Tijdstempel::parse(&t.to_xml()).unwrap(), t);
            prop_assert!(t.to_xml().ends_with('Z'));
        }
    }
}
