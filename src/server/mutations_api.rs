//! The mutation workflow on the admin listener (SPEC §4): submit, validate, list, withdraw,
//! approve, reject, and the entries changes are based on. Handlers parse, check and
//! hand over to storage and publication; the rules live in `crate::mutations`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::audit::{Caller, note};
use super::error::ApiError;
use super::publications_api::{PublicationOutcome, publish_now};
use crate::domain::ListKind;
use crate::domain::{Decision, MutationDecision, MutationRecord, MutationStatus, NewMutation};
use crate::mutations::{Stage, Submission, change_of, check_change, parse_submission};
use crate::storage::MutationQuery;

/// Bounds on what one listing returns.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// A rejection reason is for people: bounded, never empty.
const MAX_REASON_CHARS: usize = 500;

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Parses and checks a submission against the current working state (rules 1–6, 8).
async fn checked(state: &AppState, body: &Value) -> Result<Submission, ApiError> {
    let submission = parse_submission(body).map_err(ApiError::refused)?;
    let current = state.state_cache.current().await?;
    check_change(&submission.change, &current, Stage::Submission)?;
    Ok(submission)
}

fn notes_submission(request: &HttpRequest, submission: &Submission) {
    let object = format!("{}/{}", submission.change.list(), submission.change.key());
    let on_behalf_of = submission.on_behalf_of.to_string();
    note(request, |n| {
        n.object = Some(object);
        n.on_behalf_of = Some(on_behalf_of);
    });
}

pub async fn submit(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let submission = checked(&state, &body).await?;
    notes_submission(&request, &submission);
    let record = store_submission(&state, &request, &caller, submission).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/mutations/{}", record.id)))
        .json(record))
}

/// Stores a checked submission by `caller`, with its audit record in the same transaction.
pub(super) async fn store_submission(
    state: &AppState,
    request: &HttpRequest,
    caller: &Caller,
    submission: Submission,
) -> Result<MutationRecord, ApiError> {
    let at = state.clock.now();
    let on_behalf_of = String::from(submission.on_behalf_of);
    let audit = caller.audit_record(request, at, None, Some(on_behalf_of.clone()));
    let record = state
        .storage
        .submit_mutation(
            &NewMutation {
                change: submission.change,
                on_behalf_of,
                reference: submission.reference.into(),
                urgent: submission.urgent,
                agreed_deadline: submission.agreed_deadline,
                effective_from: submission.effective_from,
                submitted_by: caller.identity.fingerprint.clone(),
                submitted_by_subject: caller.identity.subject(),
                submitted_at: at,
            },
            &audit,
        )
        .await?;
    note(request, |n| n.recorded = true);
    Ok(record)
}

pub async fn validate(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let submission = checked(&state, &body).await?;
    notes_submission(&request, &submission);
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

/// `90s`, `15m`, `36h`, `2d`.
fn age(text: &str, name: &str) -> Result<Duration, ApiError> {
    let invalid = || {
        bad_request(format!(
            "{name} must be a number with s, m, h or d, e.g. 2d"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    n.checked_mul(seconds)
        .filter(|s| (0..=100 * 365 * 86_400).contains(s))
        .map(Duration::seconds)
        .ok_or_else(invalid)
}

pub(super) fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

pub(super) fn list_name(name: &str) -> Result<ListKind, ApiError> {
    name.parse()
        .map_err(|e: crate::domain::UnknownList| bad_request(e.to_string()))
}

pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let query = MutationQuery {
        status: query
            .status
            .as_deref()
            .map(str::parse::<MutationStatus>)
            .transpose()
            .map_err(bad_request)?,
        list: query.list.as_deref().map(list_name).transpose()?,
        submitter: query.submitter.clone(),
        submitted_before: query
            .min_age
            .as_deref()
            .map(|a| age(a, "min_age").map(|d| now - d))
            .transpose()?,
        submitted_after: query
            .max_age
            .as_deref()
            .map(|a| age(a, "max_age").map(|d| now - d))
            .transpose()?,
        limit: limit(query.limit)?,
    };
    let mutations = state.storage.mutations(&query).await?;
    Ok(HttpResponse::Ok().json(json!({ "mutations": mutations })))
}

async fn find(
    state: &AppState,
    request: &HttpRequest,
    id: i64,
) -> Result<MutationRecord, ApiError> {
    note(request, |n| n.object = Some(format!("mutations/{id}")));
    let record = state
        .storage
        .mutation(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no mutation {id}")))?;
    let on_behalf_of = record.on_behalf_of.clone();
    note(request, |n| n.on_behalf_of = Some(on_behalf_of));
    Ok(record)
}

pub async fn one(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find(&state, &request, *id).await?))
}

/// Stores a decision with its audit record.
async fn decide(
    state: &AppState,
    request: &HttpRequest,
    caller: &Caller,
    record: &MutationRecord,
    decision: Decision,
) -> Result<MutationRecord, ApiError> {
    let at = state.clock.now();
    let audit = caller.audit_record(
        request,
        at,
        Some(format!("mutations/{}", record.id)),
        Some(record.on_behalf_of.clone()),
    );
    let decided = state
        .storage
        .decide_mutation(
            &MutationDecision {
                id: record.id,
                decision,
                by: caller.identity.fingerprint.clone(),
                by_subject: caller.identity.subject(),
                at,
            },
            &audit,
        )
        .await?;
    note(request, |n| n.recorded = true);
    Ok(decided)
}

pub async fn withdraw(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = find(&state, &request, *id).await?;
    let withdrawn = decide(&state, &request, &caller, &record, Decision::Withdraw).await?;
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
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<Rejection>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.into_inner().reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(bad_request(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    let record = find(&state, &request, *id).await?;
    let rejected = decide(
        &state,
        &request,
        &caller,
        &record,
        Decision::Reject { reason },
    )
    .await?;
    Ok(HttpResponse::Ok().json(rejected))
}

#[derive(Debug, Serialize)]
struct Approved {
    #[serde(flatten)]
    mutation: MutationRecord,
    /// `null` when the change is not published now (scheduled, or a publication delay).
    publication: Option<PublicationOutcome>,
}

pub async fn approve(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = find(&state, &request, *id).await?;
    // Four eyes before the re-check, so the submitter hears why (the decision checks it again).
    if record.submitted_by == caller.identity.fingerprint {
        return Err(crate::domain::DecisionError::FourEyes { id: record.id }.into());
    }
    // Approvals in this process take turns between their re-check and their decision, so
    // one cannot remove what another's change refers to in between. (Across replicas the
    // publication's whole-list check still stops an invalid list.)
    let turn = state.approvals.lock().await;
    if record.status == MutationStatus::Submitted {
        // The rules again, against the working state as it is now.
        let change = change_of(&record).map_err(ApiError::refused)?;
        check_change(
            &change,
            &*state.state_cache.current().await?,
            Stage::Approval,
        )?;
    }
    let approved = decide(&state, &request, &caller, &record, Decision::Approve).await?;
    drop(turn);
    let publication = match approved.applied_at.is_some()
        && state.publisher.settings().auto_publish_delay <= Duration::zero()
    {
        true => Some(publish_now(&state, approved.list, &caller, false).await),
        false => None,
    };
    let mutation = match publication.as_ref().is_some_and(|p| p.published) {
        true => state
            .storage
            .mutation(approved.id)
            .await?
            .unwrap_or(approved),
        false => approved,
    };
    Ok(HttpResponse::Ok().json(Approved {
        mutation,
        publication,
    }))
}

pub async fn entry(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (list, key) = path.into_inner();
    let list = list_name(&list)?;
    note(&request, |n| n.object = Some(format!("{list}/{key}")));
    let current = state.state_cache.current().await?;
    let working = &current.list(list).state;
    let version = working.version_of(&key);
    if version == 0 {
        return Err(ApiError::NotFound(format!(
            "{list} has never had an entry \"{key}\""
        )));
    }
    let entry = working.entries.entry_json(&key);
    Ok(HttpResponse::Ok().json(json!({
        "list": list,
        "key": key,
        "version": version,
        "removed": entry.is_none(),
        "entry": entry,
    })))
}
