//! Structured refusals: every rejected value says where it is, which rule it broke and
//! what to fix, so that loket staff (and import operators) can act on it.

use std::fmt;

use serde::Serialize;

/// The rule a value or list broke. The string forms are part of the API (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// XSD length facet (minLength / maxLength), or a DNS length limit.
    Length,
    /// XSD pattern facet.
    Pattern,
    /// Leading/trailing whitespace or a control character inside a text value.
    Whitespace,
    /// A character that would show as something else: a bidirectional control or a
    /// zero-width character (SPEC §9).
    Character,
    /// A numeric value out of its range (Volgnummer, port).
    Range,
    /// Two entries with the same identifying value where the XSD demands uniqueness.
    Unique,
    /// A required part is missing, or the nesting is wrong.
    Structure,
    /// The document itself is not acceptable: not well-formed, DOCTYPE, wrong root or namespace.
    Document,
    /// A reference to another list that does not resolve (SPEC §4 rule 4).
    Reference,
    /// A GegevensdienstId that was removed from the GNL once is used again (rule 5).
    Reuse,
    /// The Whitelist would be published empty (rule 6).
    NotEmpty,
    /// The publication removes more entries than allowed without confirmation (rule 7).
    MassChange,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Length => "length",
            Rule::Pattern => "pattern",
            Rule::Whitespace => "whitespace",
            Rule::Character => "character",
            Rule::Range => "range",
            Rule::Unique => "unique",
            Rule::Structure => "structure",
            Rule::Document => "document",
            Rule::Reference => "reference",
            Rule::Reuse => "reuse",
            Rule::NotEmpty => "not_empty",
            Rule::MassChange => "mass_change",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one value could not be constructed; it does not know where the value came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct InvalidValue {
    pub rule: Rule,
    pub message: String,
}

impl InvalidValue {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }

    /// Places the refusal at a path (an XML element path or a JSON field path).
    pub fn at(self, path: impl Into<String>) -> Violation {
        Violation {
            path: path.into(),
            rule: self.rule,
            message: self.message,
        }
    }
}

/// A refusal with its place: `{path, rule, message}` as SPEC §4 asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub path: String,
    pub rule: Rule,
    pub message: String,
}

impl Violation {
    pub fn new(path: impl Into<String>, rule: Rule, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            rule,
            message: message.into(),
        }
    }

    /// The same refusal, one level deeper: `prefix` is put in front of the path.
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = if self.path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}/{}", self.path)
        };
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.path, self.message, self.rule)
    }
}

/// All refusals of one input. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// `None` when there is nothing to refuse.
    pub fn from_vec(violations: Vec<Violation>) -> Option<Self> {
        (!violations.is_empty()).then_some(Self(violations))
    }

    pub fn one(violation: Violation) -> Self {
        Self(vec![violation])
    }

    pub fn as_slice(&self) -> &[Violation] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}
