//! The Prometheus text format for the SLA families, whose values are computed from the
//! database at each scrape (a histogram among them, which the `prometheus` crate can only
//! count as events happen, not set).

use std::fmt::Write;

/// Text exposition format 0.0.4, names prefixed `stelselnode_`.
#[derive(Debug, Default)]
pub struct Exposition(String);

impl Exposition {
    /// Starts a metric family: `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP stelselnode_{name} {help}");
        let _ = writeln!(self.0, "# TYPE stelselnode_{name} {kind}");
    }

    /// One sample of the family started last; `name` carries a histogram's suffix.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.0, "stelselnode_{name}");
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`).
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        match value > 0.0 {
            true => "+Inf".into(),
            false => "-Inf".into(),
        }
    } else {
        format!("{value}")
    }
}
