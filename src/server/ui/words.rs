//! The web application's words: domain values, refusals and audit records as the loket
//! reads them, in Dutch. The JSON API keeps its English messages and codes; only the pages
//! speak through this file.

use maud::{Markup, html};

use crate::domain::{AuditOutcome, AuditRecord, MutationStatus, Rule, Violation};
use crate::server::error::ApiError;

/// A mutation's status in the words of the loket.
pub fn status_label(status: MutationStatus) -> &'static str {
    match status {
        MutationStatus::Submitted => "ingediend",
        MutationStatus::Approved => "goedgekeurd, nog niet gepubliceerd",
        MutationStatus::Published => "gepubliceerd",
        MutationStatus::Rejected => "afgewezen",
        MutationStatus::Withdrawn => "ingetrokken",
    }
}

/// What an integrity rule asks, in one line.
pub fn rule_label(rule: Rule) -> &'static str {
    match rule {
        Rule::Length => "te lang of te kort",
        Rule::Pattern => "heeft niet de vorm die het schema vraagt",
        Rule::Whitespace => "spaties of stuurtekens waar die niet mogen",
        Rule::Character => "een onzichtbaar of misleidend teken",
        Rule::Range => "buiten het toegestane bereik",
        Rule::Unique => "komt twee keer voor, terwijl het uniek moet zijn",
        Rule::Structure => "een verplicht onderdeel ontbreekt of staat op de verkeerde plek",
        Rule::Document => "het document zelf wordt niet aanvaard",
        Rule::Reference => "verwijst naar iets dat in de andere lijst niet (meer) bestaat",
        Rule::Reuse => "een verwijderd GegevensdienstId mag niet opnieuw gebruikt worden",
        Rule::NotEmpty => "de Whitelist wordt nooit leeg gepubliceerd",
        Rule::MassChange => {
            "verwijdert meer entries dan zonder bevestiging mag (massale wijziging)"
        }
    }
}

/// The same as a sentence of its own (next to a form field).
pub fn rule_sentence(rule: Rule) -> String {
    let label = rule_label(rule);
    let mut chars = label.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// Refusals as a list: where, and what the rule asks.
pub fn violation_list(violations: &[Violation]) -> Markup {
    html! {
        ul { @for v in violations { li { code { (v.path) } ": " (rule_label(v.rule)) } } }
    }
}

/// What the node says when a page's request did not succeed.
pub fn error_text(error: &ApiError) -> Markup {
    html! {
        @match error {
            ApiError::Unprocessable { violations, .. } if !violations.is_empty() => {
                p { "Dit voldoet niet aan de regels:" }
                (violation_list(violations))
            }
            ApiError::Unprocessable { .. } => p { "Dit voldoet niet aan de regels." },
            ApiError::BadRequest(detail) => p { "Het verzoek klopt niet: " (detail) },
            ApiError::NotFound(_) => p { "Niet gevonden." },
            ApiError::Gone(_) => p { "Deze versie is opgeschoond: de bewaartermijn is verstreken." },
            ApiError::Forbidden => p { "Uw certificaat heeft geen rol die dit toestaat." },
            ApiError::NotAllowed(_) => p {
                "Dit mag u bij deze mutatie niet: over een eigen mutatie besluit een andere beheerder (vier ogen), en alleen de indiener trekt een mutatie in."
            },
            ApiError::Conflict(_) => p {
                "De mutatie of de lijst is intussen veranderd. Laad de pagina opnieuw en kijk of het nog nodig is."
            },
            ApiError::MethodNotAllowed { .. } => p { "Deze pagina kent dit verzoek niet." },
            ApiError::Unavailable(_) => p { "De database neemt nu geen verzoeken aan; probeer het over een minuut opnieuw." },
            ApiError::Internal(_) => p { "Er ging iets mis aan de kant van de node; het is vastgelegd." },
        }
    }
}

/// A field of an entry's storage form (`gegevensdiensten[0].interfaceversie`) by the name the
/// list itself gives it (`Gegevensdienst 1 · Interfaceversie`).
pub fn field_label(path: &str) -> String {
    path.split('.')
        .map(|part| {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let label = match name {
                "naam" => "Zorgaanbiedernaam",
                "aanbiedertype" => "Aanbiedertype",
                "gegevensdiensten" => "Gegevensdienst",
                "id" => "GegevensdienstId",
                "authorization_endpoint" => "AuthorizationEndpointuri",
                "token_endpoint" => "TokenEndpointuri",
                "systeemrollen" => "Systeemrol",
                "code" => "Systeemrolcode",
                "resource_endpoint" => "ResourceEndpointuri",
                "interfaceversie" => "Interfaceversie",
                "hostname" => "Hostname",
                "organisatienaam" => "OAuthclientOrganisatienaam",
                "weergavenaam" => "Weergavenaam",
                other => other,
            };
            match index {
                Some(i) => format!("{label} {}", i + 1),
                None => label.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// What an audit record says happened, in words: `goedgekeurd via de webapplicatie`.
pub fn what_happened(record: &AuditRecord) -> String {
    let action = record.action.as_str();
    let (method, path) = action.split_once(' ').unwrap_or(("", action));
    let what = if path.ends_with("/approve") || path.ends_with("/goedkeuren") {
        "goedkeuren"
    } else if path.ends_with("/reject") || path.ends_with("/afwijzen") {
        "afwijzen"
    } else if path.ends_with("/withdraw") || path.ends_with("/intrekken") {
        "intrekken"
    } else if method == "POST" && (path == "/mutations" || path.starts_with("/ui/nieuw/")) {
        "indienen"
    } else if method == "GET" {
        "bekijken"
    } else {
        action
    };
    let door = match (method, path.starts_with("/ui")) {
        ("", _) => "",
        (_, true) => " via de webapplicatie",
        (_, false) => " via de API",
    };
    let outcome = match record.outcome {
        AuditOutcome::Allowed => String::new(),
        AuditOutcome::Refused => format!(
            " — geweigerd{}",
            record
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        AuditOutcome::Failed => " — mislukt".to_owned(),
    };
    format!("{what}{door}{outcome}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_as_a_sentence() {
        assert_eq!(rule_sentence(Rule::Length), "Te lang of te kort.");
    }

    #[test]
    fn fields_are_named_as_in_the_list() {
        assert_eq!(
            field_label("gegevensdiensten[0].systeemrollen[1].resource_endpoint"),
            "Gegevensdienst 1 · Systeemrol 2 · ResourceEndpointuri"
        );
        assert_eq!(field_label("naam"), "Zorgaanbiedernaam");
    }

    #[test]
    fn an_audit_record_says_what_happened() {
        let record = |action: &str, outcome| AuditRecord {
            at: chrono::DateTime::UNIX_EPOCH,
            actor_subject: "CN=beheer-1".into(),
            actor_fingerprint: None,
            role: None,
            action: action.into(),
            object: None,
            on_behalf_of: None,
            outcome,
            reason: Some("four eyes".into()),
        };
        assert_eq!(
            what_happened(&record("POST /ui/nieuw/{list}", AuditOutcome::Allowed)),
            "indienen via de webapplicatie"
        );
        assert_eq!(
            what_happened(&record(
                "POST /mutations/{id}/approve",
                AuditOutcome::Refused
            )),
            "goedkeuren via de API — geweigerd: four eyes"
        );
    }
}
