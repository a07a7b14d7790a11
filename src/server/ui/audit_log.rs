//! *Audit* (beheer): the audit log, newest first, with the API's filters and a period in
//! days (Europe/Amsterdam, both included).

use actix_web::{HttpResponse, web};
use maud::html;

use chrono::NaiveDate;
use serde::Deserialize;

use super::Viewer;
use super::layout::{error_page, local, page};
use crate::calendar::start_of;
use crate::domain::AuditOutcome;
use crate::server::AppState;
use crate::server::audit::AuditFilter;
use crate::server::error::ApiError;
use crate::storage::AuditQuery;

/// The outcomes the filter offers: (value, words).
const OUTCOMES: [(&str, &str); 3] = [
    ("allowed", "toegestaan"),
    ("refused", "geweigerd"),
    ("failed", "mislukt"),
];

fn outcome_words(outcome: AuditOutcome) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(value, _)| *value == outcome.as_str())
        .map_or("?", |(_, words)| words)
}

#[derive(Debug, Deserialize)]
pub struct AuditPageFilter {
    actor: Option<String>,
    action: Option<String>,
    object: Option<String>,
    outcome: Option<String>,
    /// First day shown (YYYY-MM-DD, as a date field sends it).
    van: Option<String>,
    /// Last day shown.
    tot: Option<String>,
}

impl AuditPageFilter {
    fn into_query(self) -> Result<AuditQuery, ApiError> {
        let day = |text: Option<String>, name: &str| -> Result<Option<NaiveDate>, ApiError> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| {
                        ApiError::BadRequest(format!("{name} moet een datum zijn (JJJJ-MM-DD)"))
                    }),
            }
        };
        let (van, tot) = (day(self.van, "van")?, day(self.tot, "tot")?);
        AuditFilter {
            since: van.map(start_of),
            until: tot.and_then(|d| d.succ_opt()).map(start_of),
            actor: self.actor,
            action: self.action,
            object: self.object,
            outcome: self.outcome,
            limit: None,
        }
        .into_query()
    }
}

pub async fn page_handler(
    state: web::Data<AppState>,
    viewer: Viewer,
    filter: web::Query<AuditPageFilter>,
    raw: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let query = match filter.into_inner().into_query() {
        Ok(query) => query,
        Err(e) => return error_page(&viewer, e),
    };
    let records = match state.services.audit.records(&query).await {
        Ok(records) => records,
        Err(e) => return error_page(&viewer, e.into()),
    };
    let given = |name: &str| {
        raw.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let body = html! {
        form.filters method="get" action="/ui/audit" {
            @for (name, label) in [("actor", "Wie (subject of fingerprint)"), ("action", "Actie begint met"), ("object", "Object")] {
                div { label for=(name) { (label) } input id=(name) name=(name) value=(given(name)); }
            }
            @for (name, label) in [("van", "Vanaf dag"), ("tot", "Tot en met dag")] {
                div { label for=(name) { (label) } input id=(name) name=(name) type="date" value=(given(name)); }
            }
            div {
                label for="outcome" { "Uitkomst" }
                select id="outcome" name="outcome" {
                    option value="" { "Alle" }
                    @for (outcome, words) in OUTCOMES {
                        option value=(outcome) selected[given("outcome") == outcome] { (words) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        div.tabel { table {
            caption.visually-hidden { "Auditlog, nieuwste eerst" }
            thead { tr {
                th scope="col" { "Tijd" } th scope="col" { "Wie" } th scope="col" { "Rol" } th scope="col" { "Actie" }
                th scope="col" { "Object" } th scope="col" { "Namens" } th scope="col" { "Uitkomst" } th scope="col" { "Reden" }
            } }
            tbody {
                @for r in &records {
                    tr {
                        td { (local(r.at)) } td { (r.actor_subject) } td { (r.role.as_deref().unwrap_or("—")) }
                        td { (r.action) } td { (r.object.as_deref().unwrap_or("—")) }
                        td { (r.on_behalf_of.as_deref().unwrap_or("—")) } td { (outcome_words(r.outcome)) }
                        td { (r.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        } }
    };
    page("Audit", &viewer, body)
}
