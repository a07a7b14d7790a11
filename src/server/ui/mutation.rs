//! *Mutatie*: one mutation — what it changes, field by field against the entry as it is now;
//! its SLA deadline; its audit timeline — and, for who may, approve, reject (with a reason) or
//! withdraw. The buttons follow the same rules the workflow enforces (four eyes, submitter
//! only), and the workflow refuses a forged post all the same.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::csrf::check_form;
use super::layout::{diff_table, error_page, fields, local, page};
use super::words::{status_label, what_happened};
use crate::domain::{MutationRecord, MutationStatus, Reden};
use crate::server::AppState;
use crate::server::audit::{find_noted, note};
use crate::server::error::ApiError;

/// An entry as it appears in the published XML, written by the publication's own renderer.
fn xml_fragment(
    list: crate::domain::ListKind,
    entry: Option<&serde_json::Value>,
) -> Option<String> {
    let entry = crate::domain::AnyEntry::from_json(list, &entry?.to_string()).ok()?;
    Some(crate::xml::render_entry(&entry))
}

#[derive(Debug, Deserialize)]
pub struct Notice {
    melding: Option<String>,
}

pub async fn page_handler(
    request: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
    notice: web::Query<Notice>,
) -> HttpResponse {
    match detail(&request, &state, &viewer, *id, notice.melding.as_deref()).await {
        Ok(response) => response,
        Err(e) => error_page(&viewer, e),
    }
}

async fn detail(
    request: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let m = find_noted(state, request, id).await?;
    let current = match state.services.workflow.entry(m.list, &m.entry_key).await {
        Ok(entry) => entry.entry,
        Err(crate::mutations::WorkflowError::UnknownEntry { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let history = state
        .services
        .audit
        .timeline(&format!("mutations/{id}"))
        .await?;
    // The integrity rules as an approval would apply them now (open mutations only).
    let integrity = match m.status {
        MutationStatus::Submitted => Some(match state.services.workflow.check_now(&m).await {
            Ok(()) => Ok(()),
            Err(crate::mutations::WorkflowError::Check(e)) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        }),
        _ => None,
    };
    let own = viewer.actor.fingerprint == m.submitted_by;
    let may_decide = viewer.is_beheer() && !own && m.status == MutationStatus::Submitted;
    let may_withdraw = own && m.status == MutationStatus::Submitted;
    let body = html! {
        @if let Some(text) = notice.and_then(notice_text) { p.melding role="status" { (text) } }
        dl {
            dt { "Lijst" } dd { (m.list) }
            dt { "Entry" } dd { (m.entry_key) }
            dt { "Bewerking" } dd { (match m.entry { Some(_) => "toevoegen of wijzigen", None => "verwijderen" }) }
            dt { "Status" } dd { (status_label(m.status)) }
            dt { "Deelnemer" } dd { (m.on_behalf_of) }
            dt { "Referentie" } dd { (m.reference) }
            dt { "Ingediend door" } dd { (m.submitted_by_subject) " op " (local(m.submitted_at)) }
            @if let Some(d) = &m.sla.deadline { dt { "Termijn" } dd { (local(d.deadline)) @if m.urgent { " (urgent, afgesproken)" } } }
            @if let Some(c) = &m.sla.completion { dt { "SLA" } dd { (c.outcome.as_str()) @if let Some(w) = c.werkdagen { " na " (format!("{w:.2}")) " werkdagen" } } }
        }
        h2 { "Wijziging" }
        (diff_table(&fields(current.as_ref()), &fields(m.entry.as_ref())))
        h3 { "In de lijst (XML)" }
        div.xml {
            div { h4 { "Nu" } pre tabindex="0" { code { (xml_fragment(m.list, current.as_ref()).unwrap_or_else(|| "—".into())) } } }
            div { h4 { "Na de mutatie" } pre tabindex="0" { code { (xml_fragment(m.list, m.entry.as_ref()).unwrap_or_else(|| "—".into())) } } }
        }
        @match &integrity {
            Some(Ok(())) => p.melding { "Integriteit nu: de mutatie voldoet aan de regels tegen de huidige lijsten." },
            Some(Err(problem)) => p.fout role="alert" { "Integriteit nu: " (problem) },
            None => {}
        }
        @if may_decide || may_withdraw { h2 { "Besluit" } }
        @if may_decide {
            form.actie method="post" action=(format!("/ui/mutaties/{id}/goedkeuren")) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button type="submit" { "Goedkeuren en publiceren" }
            }
            form.actie method="post" action=(format!("/ui/mutaties/{id}/afwijzen")) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label for="reden" { "Reden van afwijzing" }
                textarea id="reden" name="reden" required maxlength="500" {}
                button.secundair type="submit" { "Afwijzen" }
            }
        }
        @if may_withdraw {
            form.actie method="post" action=(format!("/ui/mutaties/{id}/intrekken")) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.secundair type="submit" { "Intrekken" }
            }
        }
        h2 { "Verloop" }
        ol {
            @for record in &history {
                li { (local(record.at)) ": " (what_happened(record)) ", door " (record.actor_subject) }
            }
        }
    };
    Ok(page(&format!("Mutatie {id}"), viewer, body))
}

fn notice_text(code: &str) -> Option<&'static str> {
    match code {
        "goedgekeurd" => Some("Goedgekeurd en gepubliceerd."),
        "goedgekeurd-later" => Some("Goedgekeurd; de publicatie volgt op het geplande moment."),
        "afgewezen" => Some("Afgewezen."),
        "ingetrokken" => Some("Ingetrokken."),
        "ingediend" => Some("Ingediend; een tweede beheerder beoordeelt de mutatie."),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    reden: Option<String>,
}

fn see_detail(id: i64, notice: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/ui/mutaties/{id}?melding={notice}"),
        ))
        .finish()
}

async fn decide(
    request: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    id: i64,
    form: DecisionForm,
    decision: &str,
) -> Result<HttpResponse, ApiError> {
    check_form(&request, &state, &viewer, &form.csrf)?;
    let record: MutationRecord = find_noted(&state, &request, id).await?;
    let notice = match decision {
        "goedkeuren" => {
            let approval = state
                .services
                .workflow
                .approve(&viewer.actor, &record)
                .await?;
            match approval.publication.is_some_and(|p| p.published) {
                true => "goedgekeurd",
                false => "goedgekeurd-later",
            }
        }
        "afwijzen" => {
            let reason = Reden::parse(form.reden.as_deref().unwrap_or_default().trim())
                .map_err(|e| ApiError::BadRequest(format!("reden: {e}")))?;
            state
                .services
                .workflow
                .reject(&viewer.actor, &record, reason)
                .await?;
            "afgewezen"
        }
        _ => {
            state
                .services
                .workflow
                .withdraw(&viewer.actor, &record)
                .await?;
            "ingetrokken"
        }
    };
    note(&request, |n| n.recorded = true);
    Ok(see_detail(id, notice))
}

macro_rules! decision_handler {
    ($name:ident, $decision:literal) => {
        pub async fn $name(
            request: HttpRequest,
            state: web::Data<AppState>,
            viewer: Viewer,
            id: web::Path<i64>,
            form: web::Form<DecisionForm>,
        ) -> HttpResponse {
            let shown = Viewer {
                actor: viewer.actor.clone(),
                csrf: viewer.csrf.clone(),
            };
            match decide(
                request.clone(),
                state,
                viewer,
                *id,
                form.into_inner(),
                $decision,
            )
            .await
            {
                Ok(response) => response,
                Err(e) => {
                    // The audit record names why, as it does for the JSON API.
                    note(&request, |n| {
                        n.reason.get_or_insert_with(|| e.to_string());
                    });
                    error_page(&shown, e)
                }
            }
        }
    };
}

decision_handler!(approve, "goedkeuren");
decision_handler!(reject, "afwijzen");
decision_handler!(withdraw, "intrekken");
