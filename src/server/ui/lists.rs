//! *Lijsten*: each list's current version, entry search, the version history with the diff
//! between any two versions, and the next version preview — the working state rendered and
//! checked as the next publication would be, its changes against the current version, the
//! mass-change warning — with the publication itself for beheer.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::csrf::check_form;
use super::layout::{diff_table, error_page, fields, local, page, urlencode};
use super::words::violation_list;
use crate::domain::{EntryDiff, ListEntries, ListKind, VersionRecord, Volgnummer};
use crate::publication::{Preview, Verdict, VersionContent};
use crate::server::AppState;
use crate::server::audit::note;
use crate::server::error::ApiError;
use crate::server::query::list_name;

/// Versions shown in the history; search results shown.
const HISTORY: usize = 100;
const MATCHES: usize = 50;

fn status_word(record: &VersionRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:?}", record.status_at(now)).to_lowercase()
}

pub async fn overview(state: web::Data<AppState>, viewer: Viewer) -> HttpResponse {
    let now = state.services.clock.now();
    let body = html! {
        div.tabel { table {
            caption.visually-hidden { "De vier lijsten" }
            thead { tr { th scope="col" { "Lijst" } th scope="col" { "Volgnummer" } th scope="col" { "Tijdstempel" } th scope="col" { "Geldig tot" } th scope="col" { "Status" } } }
            tbody {
                @for list in ListKind::ALL {
                    tr {
                        td { a href=(format!("/ui/lijsten/{list}")) { (list) } }
                        @match state.served.current(list) {
                            Some(v) => {
                                td { (v.record.volgnummer) } td { (local(v.record.tijdstempel.instant())) }
                                td { (local(v.record.expires_at)) } td { (status_word(&v.record, now)) }
                            }
                            None => { td colspan="4" { "nog niet gepubliceerd" } }
                        }
                    }
                }
            }
        } }
    };
    page("Lijsten", &viewer, body)
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    zoek: Option<String>,
    van: Option<String>,
    tot: Option<String>,
    melding: Option<String>,
}

async fn content(
    state: &AppState,
    list: ListKind,
    n: Volgnummer,
) -> Result<std::sync::Arc<ListEntries>, ApiError> {
    match state.services.publisher.version_content(list, n).await? {
        VersionContent::Entries(entries) => Ok(entries),
        VersionContent::Purged { .. } => {
            Err(ApiError::Gone(format!("{list} version {n} was purged")))
        }
        VersionContent::Missing => Err(ApiError::NotFound(format!("{list} has no version {n}"))),
    }
}

fn diff_view(diff: &EntryDiff) -> Markup {
    html! {
        p { (diff.added.len()) " toegevoegd, " (diff.changed.len()) " gewijzigd, " (diff.removed.len()) " verwijderd." }
        @for e in diff.added.iter().take(MATCHES) { h3 { "Toegevoegd: " (e.key) } (diff_table(&fields(None), &fields(Some(&e.entry)))) }
        @for e in diff.changed.iter().take(MATCHES) { h3 { "Gewijzigd: " (e.key) } (diff_table(&fields(Some(&e.before)), &fields(Some(&e.after)))) }
        @for e in diff.removed.iter().take(MATCHES) { h3 { "Verwijderd: " (e.key) } (diff_table(&fields(Some(&e.entry)), &fields(None))) }
    }
}

/// The next version as `Publisher::preview` decided it: the verdict first, in words.
fn preview_view(preview: &Preview) -> Markup {
    let together = |lists: &[ListKind]| -> String {
        match lists {
            [] => String::new(),
            lists => format!(
                ", samen met {} (de verwijzingen hebben hun wijzigingen nodig)",
                lists
                    .iter()
                    .map(ListKind::to_string)
                    .collect::<Vec<_>>()
                    .join(" en ")
            ),
        }
    };
    html! {
        @match &preview.verdict {
            Verdict::Publishes { together: with } => p role="status" {
                "Volgnummer " (preview.volgnummer) " met " (preview.entries) " entries wordt gepubliceerd" (together(with)) "."
            },
            Verdict::NeedsConfirmation { together: with, violations } => div.fout role="alert" {
                p { "Volgnummer " (preview.volgnummer) " met " (preview.entries) " entries wordt alleen gepubliceerd met een bevestiging van de massale wijziging" (together(with)) ":" }
                (violation_list(violations.as_slice()))
            },
            Verdict::Refused(violations) => div.fout role="alert" {
                p { "Volgnummer " (preview.volgnummer) " wordt geweigerd; er wordt niets gepubliceerd:" }
                (violation_list(violations.as_slice()))
            },
        }
        @if let Some(d) = &preview.changes { (diff_view(d)) }
    }
}

pub async fn list_page(
    state: web::Data<AppState>,
    viewer: Viewer,
    list: web::Path<String>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    match list_view(&state, &viewer, &list, &query).await {
        Ok(response) => response,
        Err(e) => error_page(&viewer, e),
    }
}

async fn list_view(
    state: &AppState,
    viewer: &Viewer,
    list: &str,
    q: &ListQuery,
) -> Result<HttpResponse, ApiError> {
    let list = list_name(list)?;
    let now = state.services.clock.now();
    let current = state.served.current(list);
    let current_entries = match &current {
        Some(v) => Some(content(state, list, v.record.volgnummer).await?),
        None => None,
    };
    let zoek = q
        .zoek
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(str::to_lowercase);
    let matches: Vec<String> = match (&zoek, &current_entries) {
        (Some(z), Some(entries)) => entries
            .keys()
            .into_iter()
            .filter(|k| k.to_lowercase().contains(z.as_str()))
            .take(MATCHES)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let versions = state.services.publisher.versions(list).await?;
    let between = match (q.van.as_deref(), q.tot.as_deref()) {
        (Some(a), Some(b)) => {
            let parse =
                |t: &str| Volgnummer::parse(t).map_err(|e| ApiError::BadRequest(e.to_string()));
            let (a, b) = (parse(a)?, parse(b)?);
            let (older, newer) = (
                content(state, list, a).await?,
                content(state, list, b).await?,
            );
            Some((a, b, older.diff(&newer)))
        }
        _ => None,
    };
    let preview = state.services.publisher.preview(list).await?;
    let confirmation = matches!(preview.verdict, Verdict::NeedsConfirmation { .. });
    let body = html! {
        @if q.melding.as_deref() == Some("gepubliceerd") { p.melding role="status" { "Gepubliceerd." } }
        @match &current {
            Some(v) => p { "Huidige versie " (v.record.volgnummer) ", " (local(v.record.tijdstempel.instant())) ", geldig tot " (local(v.record.expires_at)) " (" (status_word(&v.record, now)) ")." },
            None => p { "Nog niet gepubliceerd." },
        }
        h2 { "Zoek een entry" }
        form.filters method="get" action=(format!("/ui/lijsten/{list}")) {
            div { label for="zoek" { "Sleutel bevat" } input id="zoek" name="zoek" value=(q.zoek.as_deref().unwrap_or("")); }
            button type="submit" { "Zoek" }
        }
        @if zoek.is_some() {
            @if matches.is_empty() { p { "Niets gevonden." } }
            ul { @for key in &matches { li { (key) " — " a href=(format!("/ui/nieuw/{list}?entry={}", urlencode(key))) { "wijzigen" } } } }
        }
        h2 { "Volgende versie" }
        (preview_view(&preview))
        @if viewer.is_beheer() && !matches!(preview.verdict, Verdict::Refused(_)) {
            form.actie method="post" action=(format!("/ui/lijsten/{list}/publiceren")) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                @if confirmation { div.veld { label for="bevestig" { input id="bevestig" type="checkbox" name="bevestig" value="ja"; " Ik bevestig de massale wijziging" } } }
                button type="submit" { "Publiceer de volgende versie" }
            }
        }
        h2 { "Versies" }
        form.filters method="get" action=(format!("/ui/lijsten/{list}")) {
            div { label for="van" { "Vergelijk versie" } input id="van" name="van" inputmode="numeric" value=(q.van.as_deref().unwrap_or("")); }
            div { label for="tot" { "met versie" } input id="tot" name="tot" inputmode="numeric" value=(q.tot.as_deref().unwrap_or("")); }
            button type="submit" { "Vergelijk" }
        }
        @if let Some((a, b, d)) = &between { h3 { "Van " (a) " naar " (b) } (diff_view(d)) }
        div.tabel { table {
            caption.visually-hidden { "Versies, nieuwste eerst" }
            thead { tr { th scope="col" { "Volgnummer" } th scope="col" { "Tijdstempel" } th scope="col" { "Soort" } th scope="col" { "Status" } th scope="col" { "Verschil" } } }
            tbody {
                @for v in versions.iter().rev().take(HISTORY) {
                    tr {
                        td { (v.volgnummer) } td { (local(v.tijdstempel.instant())) }
                        td { @if v.heartbeat { "verlenging" } @else { "wijziging" } @if v.purged_at.is_some() { " (opgeschoond)" } }
                        td { (status_word(v, now)) }
                        td { @if v.volgnummer.get() > 1 && v.purged_at.is_none() {
                            a href=(format!("/ui/lijsten/{list}?van={}&tot={}", v.volgnummer.get() - 1, v.volgnummer)) { "met de vorige" }
                        } }
                    }
                }
            }
        } }
    };
    Ok(page(&format!("Lijst {list}"), viewer, body))
}

#[derive(Debug, Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    csrf: String,
    bevestig: Option<String>,
}

pub async fn publish(
    request: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    list: web::Path<String>,
    form: web::Form<PublishForm>,
) -> HttpResponse {
    let outcome = async {
        let list = list_name(&list)?;
        note(&request, |n| n.object = Some(list.to_string()));
        check_form(&request, &state, &viewer, &form.csrf)?;
        let confirmed = form.bevestig.as_deref() == Some("ja");
        state
            .services
            .workflow
            .publish(&viewer.actor, &[list], confirmed)
            .await?;
        Ok::<_, ApiError>(list)
    }
    .await;
    match outcome {
        Ok(list) => HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("/ui/lijsten/{list}?melding=gepubliceerd"),
            ))
            .finish(),
        Err(e) => {
            note(&request, |n| {
                n.reason.get_or_insert_with(|| e.to_string());
            });
            error_page(&viewer, e)
        }
    }
}
