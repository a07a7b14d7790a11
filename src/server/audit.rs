//! Every request on the admin listener leaves one audit record (SPEC §7, issue 5): who
//! (certificate subject and fingerprint), with which roles, what (method and route), on what
//! object, on whose behalf, the outcome and why. Handlers that change state write their
//! record in the same transaction as the change and mark the request `recorded`; for every
//! other request — reads and refusals — this middleware writes it.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::query::{limit, text_filter};
use crate::domain::{AuditOutcome, AuditRecord, MutationRecord};
use crate::mutations::Actor;
use crate::roles::Role;
use crate::storage::{AuditQuery, AuditStore};
use crate::tls::ClientIdentity;

/// The longest reason kept in an audit record.
const MAX_REASON_CHARS: usize = 2000;

/// What a handler or guard tells the audit about its request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub object: Option<String>,
    pub on_behalf_of: Option<String>,
    pub reason: Option<String>,
    /// The handler wrote the record with its change.
    pub recorded: bool,
}

/// Adds to the request's audit note.
pub fn note(request: &HttpRequest, update: impl FnOnce(&mut AuditNote)) {
    let mut extensions = request.extensions_mut();
    if extensions.get::<AuditNote>().is_none() {
        extensions.insert(AuditNote::default());
    }
    update(extensions.get_mut::<AuditNote>().expect("inserted above"));
}

/// The mutation a request is about, noted for the audit with its deelnemer.
pub async fn find_noted(
    state: &AppState,
    request: &HttpRequest,
    id: i64,
) -> Result<MutationRecord, ApiError> {
    note(request, |n| n.object = Some(format!("mutations/{id}")));
    let record = state.services.workflow.mutation(id).await?;
    let on_behalf_of = record.on_behalf_of.clone();
    note(request, |n| n.on_behalf_of = Some(on_behalf_of));
    Ok(record)
}

/// `METHOD /route/{pattern}`: the action as the audit log names it.
pub fn action(method: &actix_web::http::Method, pattern: Option<String>, path: &str) -> String {
    format!("{method} {}", pattern.unwrap_or_else(|| path.to_owned()))
}

/// The staff member behind a request: the verified certificate with the roles `require`
/// granted, and the action as the audit log names it. Without both: 403.
impl FromRequest for Actor {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let actor = match (
            request.conn_data::<ClientIdentity>(),
            request.extensions().get::<Vec<Role>>(),
        ) {
            (Some(identity), Some(roles)) => Ok(Actor {
                fingerprint: identity.fingerprint.clone(),
                subject: identity.subject(),
                roles: roles.clone(),
                action: action(request.method(), request.match_pattern(), request.path()),
            }),
            _ => Err(ApiError::Forbidden),
        };
        std::future::ready(actor)
    }
}

/// Writes the audit record of every admin request that its handler did not record itself.
pub async fn audit(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("state is registered");
    let seen = Seen {
        at: state.services.clock.now(),
        identity: request.conn_data::<ClientIdentity>().cloned(),
        action: action(request.method(), request.match_pattern(), request.path()),
    };
    let response = next.call(request).await?;
    let note = response
        .request()
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    if note.recorded {
        return Ok(response.map_into_left_body());
    }
    let record = record_of(seen, &response, note, &state);
    if state
        .audit_backlog
        .write(state.services.storage.as_ref(), record)
        .await
        .is_err()
    {
        // Neither written nor kept for later: the request fails as a whole.
        let failed =
            ApiError::Unavailable("the audit log cannot be written now; try again later".into());
        let (request, _) = response.into_parts();
        return Ok(ServiceResponse::new(request, failed.error_response()).map_into_right_body());
    }
    Ok(response.map_into_left_body())
}

/// The most audit records kept in memory while the database refuses writes.
const MAX_BACKLOG: usize = 10_000;

/// Audit records that could not be written when their request was answered (the database
/// refused writes: a full disk, a database that is down). They are written, oldest first,
/// once it takes writes again: before the next record, and by the refresh loop. When the
/// backlog is full, requests fail as a whole rather than lose their record.
#[derive(Default)]
pub struct AuditBacklog {
    records: std::sync::Mutex<std::collections::VecDeque<AuditRecord>>,
    /// One flush at a time, so records are written in order.
    flushing: tokio::sync::Mutex<()>,
}

impl AuditBacklog {
    /// Writes `record`, after any older records still waiting; keeps it for later when the
    /// database refuses. `Err` when it can be neither written nor kept.
    pub async fn write(&self, storage: &dyn AuditStore, record: AuditRecord) -> Result<(), ()> {
        if self.is_empty() {
            match storage.append_audit(&record).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::error!(error = %e, action = %record.action,
                    client = %record.actor_subject, "cannot write an audit record; kept for later"),
            }
        }
        {
            let mut records = self.records.lock().expect("audit backlog lock");
            if records.len() >= MAX_BACKLOG {
                tracing::error!(action = %record.action, client = %record.actor_subject,
                    "the audit backlog is full; the request is refused");
                return Err(());
            }
            records.push_back(record);
        }
        self.flush(storage).await;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.records.lock().expect("audit backlog lock").is_empty()
    }

    /// Writes the waiting records, oldest first, until the database refuses one.
    pub async fn flush(&self, storage: &dyn AuditStore) {
        let _turn = self.flushing.lock().await;
        loop {
            let Some(oldest) = self
                .records
                .lock()
                .expect("audit backlog lock")
                .front()
                .cloned()
            else {
                return;
            };
            if storage.append_audit(&oldest).await.is_err() {
                return;
            }
            self.records.lock().expect("audit backlog lock").pop_front();
        }
    }
}

/// What the audit middleware knows of a request before its handler runs.
struct Seen {
    at: DateTime<Utc>,
    identity: Option<ClientIdentity>,
    action: String,
}

/// Who, with which roles, did what on what, and why: the record of a request its handler
/// did not record itself.
fn record_of<B>(
    seen: Seen,
    response: &ServiceResponse<B>,
    note: AuditNote,
    state: &AppState,
) -> AuditRecord {
    let identity = seen.identity.as_ref();
    let outcome = match response.status().as_u16() {
        ..400 => AuditOutcome::Allowed,
        400..500 => AuditOutcome::Refused,
        _ => AuditOutcome::Failed,
    };
    let reason = note.reason.or_else(|| {
        let error = response.response().error()?;
        Some(match error.as_error::<ApiError>() {
            Some(ApiError::Unprocessable {
                message,
                violations,
            }) => format!(
                "{message}: {}",
                violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => error.to_string(),
        })
    });
    // `require` put the roles on requests it let through; refused ones are resolved here.
    let granted = response.request().extensions().get::<Vec<Role>>().cloned();
    let roles = granted.unwrap_or_else(|| identity.map(|i| state.roles_of(i)).unwrap_or_default());
    AuditRecord {
        at: seen.at,
        actor_subject: identity.map_or_else(|| "unknown".into(), ClientIdentity::subject),
        actor_fingerprint: identity.map(|i| i.fingerprint.clone()),
        role: (!roles.is_empty()).then(|| Role::label(&roles)),
        action: seen.action,
        object: note.object,
        on_behalf_of: note.on_behalf_of,
        outcome,
        reason: reason.map(|r| r.chars().take(MAX_REASON_CHARS).collect()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object: Option<String>,
    pub outcome: Option<String>,
    pub limit: Option<u32>,
}

impl AuditFilter {
    /// The query these filters ask for; an empty text filter is no filter (web forms send
    /// empty fields).
    pub fn into_query(self) -> Result<AuditQuery, ApiError> {
        let given = |v: Option<String>| v.filter(|t| !t.is_empty());
        Ok(AuditQuery {
            since: self.since,
            until: self.until,
            actor: text_filter(given(self.actor), "actor")?,
            action: text_filter(given(self.action), "action")?,
            object: text_filter(given(self.object), "object")?,
            outcome: given(self.outcome)
                .as_deref()
                .map(str::parse::<AuditOutcome>)
                .transpose()
                .map_err(ApiError::BadRequest)?,
            limit: limit(self.limit)?,
        })
    }
}

pub async fn audit_log(
    state: web::Data<AppState>,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    let query = filter.into_inner().into_query()?;
    let records = state.services.audit.records(&query).await?;
    Ok(HttpResponse::Ok().json(json!({ "records": records })))
}
