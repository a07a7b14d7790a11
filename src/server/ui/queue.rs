//! *Werkvoorraad*: open mutations by SLA deadline, the time left in werkdagen, overdue and at
//! risk marked (in words as well as colour), filterable by list and status.

use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::layout::{error_page, page, status_label};
use crate::domain::{MutationRecord, MutationStatus};
use crate::server::AppState;
use crate::server::query::list_name;
use crate::storage::MutationQuery;

/// The most open mutations one page shows.
const PAGE: u32 = 1000;

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
}

pub async fn page_handler(
    state: web::Data<AppState>,
    viewer: Viewer,
    filter: web::Query<QueueFilter>,
) -> HttpResponse {
    let list = match filter
        .lijst
        .as_deref()
        .filter(|l| !l.is_empty())
        .map(list_name)
    {
        Some(Err(e)) => return error_page(&viewer, e),
        Some(Ok(list)) => Some(list),
        None => None,
    };
    let wanted = filter.status.as_deref().filter(|s| !s.is_empty());
    let part = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_lowercase)
    };
    let (deelnemer, indiener) = (part(&filter.deelnemer), part(&filter.indiener));
    let contains = |text: &str, wanted: &Option<String>| {
        wanted
            .as_ref()
            .is_none_or(|w| text.to_lowercase().contains(w.as_str()))
    };
    let days = match filter
        .dagen
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) => match d.parse::<u16>() {
            Ok(days) => Some(i64::from(days)),
            Err(_) => {
                return error_page(
                    &viewer,
                    crate::server::error::ApiError::BadRequest("dagen moet een getal zijn".into()),
                );
            }
        },
        None => None,
    };
    let query = MutationQuery {
        list,
        limit: PAGE,
        ..MutationQuery::default()
    };
    let mut open: Vec<MutationRecord> = match state.workflow.mutations(&query).await {
        Ok(all) => all
            .into_iter()
            .filter(|m| m.is_open() && wanted.is_none_or(|s| m.status.as_str() == s))
            .filter(|m| {
                contains(&m.on_behalf_of, &deelnemer)
                    && contains(&m.submitted_by_subject, &indiener)
            })
            .filter(|m| {
                days.is_none_or(|d| m.submitted_at <= state.clock.now() - chrono::Duration::days(d))
            })
            .collect(),
        Err(e) => return error_page(&viewer, e.into()),
    };
    open.sort_by_key(|m| (m.sla.deadline.as_ref().map(|d| d.deadline), m.id));
    let now = state.clock.now();
    let policy = state.sla.policy();
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
        @if open.is_empty() {
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
                    @for m in &open {
                        @let left = m.sla.deadline.as_ref().map(|d| policy.werkdagen_left(d.deadline, now));
                        @let class = match left {
                            Some(l) if l < 0.0 => "te-laat",
                            Some(l) if l < policy.at_risk_werkdagen => "risico",
                            _ => "",
                        };
                        tr class=(class) {
                            td { a href=(format!("/ui/mutaties/{}", m.id)) { "#" (m.id) } @if m.urgent { " (urgent)" } }
                            td { (m.list) }
                            td { (m.entry_key) }
                            td { (m.on_behalf_of) }
                            td { (m.submitted_by_subject) }
                            td { (status_label(m.status)) }
                            td { @if let Some(d) = &m.sla.deadline { (d.deadline.with_timezone(&chrono_tz::Europe::Amsterdam).format("%d-%m-%Y %H:%M")) } }
                            td.termijn {
                                @match left {
                                    Some(l) if l < 0.0 => { "te laat (" (format!("{:.2}", -l)) ")" }
                                    Some(l) if l < policy.at_risk_werkdagen => { (format!("{l:.2}")) " — dreigt te laat" }
                                    Some(l) => { (format!("{l:.2}")) }
                                    None => { "—" }
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    page("Werkvoorraad", &viewer, body)
}
