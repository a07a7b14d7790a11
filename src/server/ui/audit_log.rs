//! *Audit* (beheer): the audit log, newest first, with the API's filters.

use actix_web::{HttpResponse, web};
use maud::html;

use super::Viewer;
use super::layout::{error_page, local, page};
use crate::server::AppState;
use crate::server::audit::AuditFilter;

pub async fn page_handler(
    state: web::Data<AppState>,
    viewer: Viewer,
    filter: web::Query<AuditFilter>,
    raw: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let query = match filter.into_inner().into_query() {
        Ok(query) => query,
        Err(e) => return error_page(&viewer, e),
    };
    let records = match state.services.storage.audit_records(&query).await {
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
            div {
                label for="outcome" { "Uitkomst" }
                select id="outcome" name="outcome" {
                    option value="" { "Alle" }
                    @for outcome in ["allowed", "refused", "failed"] {
                        option value=(outcome) selected[given("outcome") == outcome] { (outcome) }
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
                        td { (r.on_behalf_of.as_deref().unwrap_or("—")) } td { (r.outcome.as_str()) }
                        td { (r.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        } }
    };
    page("Audit", &viewer, body)
}
