//! *Werkvoorraad*: open mutations by SLA deadline, the time left in werkdagen, overdue and at
//! risk marked (in words as well as colour), filterable by list and status.

use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::layout::{error_page, local, page, urlencode};
use super::words::status_label;
use crate::domain::MutationStatus;
use crate::mutations::QueuedMutation;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::query::list_name;
use crate::sla::Standing;
use crate::storage::OpenQueueQuery;

/// Open mutations per page.
const PAGE: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct QueueFilter {
    lijst: Option<String>,
    status: Option<String>,
    /// Part of the deelnemer's name.
    deelnemer: Option<String>,
    /// Part of the submitter's certificate subject.
    indiener: Option<String>,
    /// Submitted at least this many days ago.
    dagen: Option<String>,
    /// The page, from 1.
    pagina: Option<String>,
}

impl QueueFilter {
    /// The query this filter asks the workflow.
    fn query(&self, now: chrono::DateTime<chrono::Utc>) -> Result<OpenQueueQuery, ApiError> {
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let list = given(&self.lijst).map(|l| list_name(&l)).transpose()?;
        let status = match given(&self.status).as_deref() {
            None => None,
            Some(s) => match s.parse::<MutationStatus>() {
                Ok(status @ (MutationStatus::Submitted | MutationStatus::Approved)) => Some(status),
                _ => return Err(ApiError::BadRequest("onbekende status".into())),
            },
        };
        let submitted_before = match given(&self.dagen) {
            None => None,
            Some(d) => match d.parse::<u16>() {
                Ok(days) => Some(now - chrono::Duration::days(i64::from(days))),
                Err(_) => return Err(ApiError::BadRequest("dagen moet een getal zijn".into())),
            },
        };
        let page = match given(&self.pagina) {
            None => 1,
            Some(p) => match p.parse::<u32>() {
                Ok(page @ 1..=10_000) => page,
                _ => return Err(ApiError::BadRequest("pagina moet 1 tot 10000 zijn".into())),
            },
        };
        Ok(OpenQueueQuery {
            list,
            status,
            on_behalf_of: given(&self.deelnemer),
            submitter_subject: given(&self.indiener),
            submitted_before,
            offset: (page - 1) * PAGE,
            limit: PAGE,
        })
    }

    /// This filter's address on page `page`.
    fn address(&self, page: u32) -> String {
        let mut address = format!("/ui?pagina={page}");
        for (name, value) in [
            ("lijst", &self.lijst),
            ("status", &self.status),
            ("deelnemer", &self.deelnemer),
            ("indiener", &self.indiener),
            ("dagen", &self.dagen),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                address.push_str(&format!("&{name}={}", urlencode(value)));
            }
        }
        address
    }
}

pub async fn page_handler(
    state: web::Data<AppState>,
    viewer: Viewer,
    filter: web::Query<QueueFilter>,
) -> HttpResponse {
    let query = match filter.query(state.services.clock.now()) {
        Ok(query) => query,
        Err(e) => return error_page(&viewer, e),
    };
    let queue = match state.services.workflow.open_queue(&query).await {
        Ok(queue) => queue,
        Err(e) => return error_page(&viewer, e.into()),
    };
    let page_number = query.offset / PAGE + 1;
    let wanted = query.status.map(MutationStatus::as_str);
    let body = html! {
        form.filters method="get" action="/ui" hx-get="/ui" hx-target="#inhoud" hx-select="#inhoud" hx-swap="outerHTML" hx-push-url="true" {
            div {
                label for="lijst" { "Lijst" }
                select id="lijst" name="lijst" {
                    option value="" { "Alle" }
                    @for (value, name) in [("zal", "Zorgaanbiederslijst"), ("ocl", "OAuth Client List"), ("gnl", "Gegevensdienstnamenlijst"), ("whitelist", "Whitelist")] {
                        option value=(value) selected[filter.lijst.as_deref() == Some(value)] { (name) }
                    }
                }
            }
            div {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" { "Open" }
                    @for status in [MutationStatus::Submitted, MutationStatus::Approved] {
                        option value=(status.as_str()) selected[wanted == Some(status.as_str())] { (status_label(status)) }
                    }
                }
            }
            @for (name, label, value) in [("deelnemer", "Deelnemer bevat", &filter.deelnemer), ("indiener", "Indiener bevat", &filter.indiener), ("dagen", "Minstens dagen oud", &filter.dagen)] {
                div { label for=(name) { (label) } input id=(name) name=(name) value=(value.as_deref().unwrap_or("")); }
            }
            button type="submit" { "Filter" }
        }
        @if queue.mutations.is_empty() {
            p { "Geen open mutaties." }
        } @else {
            div.tabel { table {
                caption.visually-hidden { "Open mutaties, de eerste termijn bovenaan" }
                thead { tr {
                    th scope="col" { "Mutatie" } th scope="col" { "Lijst" } th scope="col" { "Entry" }
                    th scope="col" { "Deelnemer" } th scope="col" { "Ingediend door" } th scope="col" { "Status" }
                    th scope="col" { "Termijn" } th scope="col" { "Werkdagen over" }
                } }
                tbody {
                    @for QueuedMutation { mutation: m, standing } in &queue.mutations {
                        tr class=(match standing {
                            Some(Standing::Overdue { .. }) => "te-laat",
                            Some(Standing::AtRisk { .. }) => "risico",
                            _ => "",
                        }) {
                            td { a href=(format!("/ui/mutaties/{}", m.id)) { "#" (m.id) } @if m.urgent { " (urgent)" } }
                            td { (m.list) }
                            td { (m.entry_key) }
                            td { (m.on_behalf_of) }
                            td { (m.submitted_by_subject) }
                            td { (status_label(m.status)) }
                            td { @if let Some(d) = &m.sla.deadline { (local(d.deadline)) } }
                            td.termijn {
                                @match standing {
                                    Some(Standing::Overdue { by }) => { "te laat (" (format!("{by:.2}")) ")" }
                                    Some(Standing::AtRisk { left }) => { (format!("{left:.2}")) " — dreigt te laat" }
                                    Some(Standing::InTime { left }) => { (format!("{left:.2}")) }
                                    None => { "—" }
                                }
                            }
                        }
                    }
                }
            } }
            @if page_number > 1 || queue.more {
                nav.paginas aria-label="Pagina's" {
                    @if page_number > 1 { a href=(filter.address(page_number - 1)) rel="prev" { "Vorige " (PAGE) } " " }
                    "Pagina " (page_number)
                    @if queue.more { " " a href=(filter.address(page_number + 1)) rel="next" { "Volgende " (PAGE) } }
                }
            }
        }
    };
    page("Werkvoorraad", &viewer, body)
}
