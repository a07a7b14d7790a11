//! The mutation workflow on the admin listener (SPEC §4): submit, validate, list, withdraw,
//! approve, reject, and the entries changes are based on. Each handler extracts, notes what
//! the audit record names, calls `MutationWorkflow` and answers; the rules live there.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::audit::{find_noted as find, note};
use super::error::ApiError;
use super::query::{age, bad_request, limit, list_name, text_filter};
use crate::domain::{MutationStatus, Reden, Violations};
use crate::mutations::{Actor, Submission, parse_submission};
use crate::storage::MutationQuery;

/// Parses a submission and notes its entry and deelnemer for the audit.
fn submission(request: &HttpRequest, body: &Value) -> Result<Submission, ApiError> {
    let submission = parse_submission(body).map_err(ApiError::refused)?;
    let object = format!("{}/{}", submission.change.list(), submission.change.key());
    let on_behalf_of = submission.on_behalf_of.to_string();
    note(request, |n| {
        n.object = Some(object);
        n.on_behalf_of = Some(on_behalf_of);
    });
    Ok(submission)
}

pub async fn submit(
    request: HttpRequest,
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let submission = submission(&request, &body)?;
    let record = state.services.workflow.submit(&actor, submission).await?;
    note(&request, |n| n.recorded = true);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/mutations/{}", record.id)))
        .json(record))
}

pub async fn validate(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let submission = submission(&request, &body)?;
    state.services.workflow.validate(&submission).await?;
    Ok(HttpResponse::Ok().json(json!({
        "valid": true,
        "list": submission.change.list(),
        "key": submission.change.key(),
        "base_version": submission.change.base_version(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    list: Option<String>,
    /// Certificate fingerprint or subject (`CN=...`).
    submitter: Option<String>,
    /// Submitted at least this long ago, e.g. `2d`, `36h`.
    min_age: Option<String>,
    /// Submitted at most this long ago.
    max_age: Option<String>,
    limit: Option<u32>,
}

impl ListQuery {
    fn parse(self, now: chrono::DateTime<chrono::Utc>) -> Result<MutationQuery, ApiError> {
        let ago =
            |text: Option<String>, name| text.map(|a| age(&a, name).map(|d| now - d)).transpose();
        Ok(MutationQuery {
            status: self
                .status
                .as_deref()
                .map(str::parse::<MutationStatus>)
                .transpose()
                .map_err(bad_request)?,
            list: self.list.as_deref().map(list_name).transpose()?,
            submitter: text_filter(self.submitter, "submitter")?,
            submitted_before: ago(self.min_age, "min_age")?,
            submitted_after: ago(self.max_age, "max_age")?,
            limit: limit(self.limit)?,
        })
    }
}

pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner().parse(state.services.clock.now())?;
    let mutations = state.services.workflow.mutations(&query).await?;
    Ok(HttpResponse::Ok().json(json!({ "mutations": mutations })))
}

pub async fn one(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find(&state, &request, *id).await?))
}

pub async fn withdraw(
    request: HttpRequest,
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = find(&state, &request, *id).await?;
    let withdrawn = state.services.workflow.withdraw(&actor, &record).await?;
    note(&request, |n| n.recorded = true);
    Ok(HttpResponse::Ok().json(withdrawn))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    reason: String,
}

pub async fn reject(
    request: HttpRequest,
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<i64>,
    body: web::Json<Rejection>,
) -> Result<HttpResponse, ApiError> {
    let reason = Reden::parse(body.into_inner().reason.trim())
        .map_err(|e| ApiError::refused(Violations::one(e.at("$.reason"))))?;
    let record = find(&state, &request, *id).await?;
    let rejected = state
        .services
        .workflow
        .reject(&actor, &record, reason)
        .await?;
    note(&request, |n| n.recorded = true);
    Ok(HttpResponse::Ok().json(rejected))
}

pub async fn approve(
    request: HttpRequest,
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = find(&state, &request, *id).await?;
    let approval = state.services.workflow.approve(&actor, &record).await?;
    note(&request, |n| n.recorded = true);
    Ok(HttpResponse::Ok().json(approval))
}

pub async fn entry(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (list, key) = path.into_inner();
    let list = list_name(&list)?;
    note(&request, |n| n.object = Some(format!("{list}/{key}")));
    Ok(HttpResponse::Ok().json(state.services.workflow.entry(list, &key).await?))
}
