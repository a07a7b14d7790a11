//! The HTTP error boundary: every handler error maps to a status here, in one place, and
//! internal details are logged once and never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::{DecisionError, Violation, Violations};
use crate::mutations::{CheckError, WorkflowError};
use crate::publication::PublishError;
use crate::sla::{ReportError, SlaError};
use crate::storage::StorageError;

/// What a 503 tells clients to wait before trying again.
const RETRY_AFTER_SECONDS: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("this certificate has no role that allows this request")]
    Forbidden,
    /// The role fits, but not for this object (four eyes, someone else's mutation).
    #[error("{0}")]
    NotAllowed(String),
    #[error("{message}")]
    Unprocessable {
        message: String,
        violations: Vec<Violation>,
    },
    #[error("this route does not take this method; it takes {allow}")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    /// Existed, and was removed on purpose (a version purged by retention).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Logs the cause (once, here) and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let cause = cause.to_string();
        tracing::error!(%cause, "request failed");
        ApiError::Internal(cause)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden | ApiError::NotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), json!(self.status_code().canonical_reason()));
        body.insert("message".into(), json!(self.to_string()));
        if let ApiError::Unprocessable { violations, .. } = self {
            body.insert("violations".into(), json!(violations));
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header(("Retry-After", RETRY_AFTER_SECONDS.to_string()));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header(("Allow", allow.as_str()));
            }
            _ => {}
        }
        response.json(body)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::StaleEntry { .. }
            | StorageError::StaleList { .. }
            | StorageError::OpenMutation { .. } => ApiError::Conflict(e.to_string()),
            StorageError::Decision(e) => e.into(),
            StorageError::UnknownMutation(_) => ApiError::NotFound(e.to_string()),
            StorageError::Check(e) => e.into(),
            e if e.is_unavailable() => {
                tracing::error!(cause = %e, "the database cannot take the request now");
                ApiError::Unavailable(
                    "the database cannot take this request now; try again later".into(),
                )
            }
            StorageError::Corrupt(_)
            | StorageError::InvalidUrl(_)
            | StorageError::RestoreSource(_)
            | StorageError::Lost(_)
            | StorageError::Unsupported(_)
            | StorageError::Migration(_)
            | StorageError::Database(_) => ApiError::internal(e),
        }
    }
}

impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::WrongState { .. } => ApiError::Conflict(e.to_string()),
            DecisionError::FourEyes { .. } | DecisionError::NotSubmitter { .. } => {
                ApiError::NotAllowed(e.to_string())
            }
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Check(e) => e.into(),
            WorkflowError::Decision(e) => e.into(),
            WorkflowError::UnknownMutation(_) | WorkflowError::UnknownEntry { .. } => {
                ApiError::NotFound(e.to_string())
            }
            WorkflowError::NotPublished {
                message,
                violations,
            } => match violations.is_empty() {
                true => ApiError::Unavailable(message),
                false => ApiError::Unprocessable {
                    message,
                    violations,
                },
            },
            WorkflowError::Storage(e) => e.into(),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Storage(e) => e.into(),
            PublishError::Refused { violations, .. } => ApiError::refused(violations),
            e => ApiError::internal(e),
        }
    }
}

impl From<SlaError> for ApiError {
    fn from(e: SlaError) -> Self {
        match e {
            SlaError::Storage(e) => e.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            // Well-formed dates that make no period: refused like an integrity rule.
            ReportError::EmptyPeriod { .. } | ReportError::TooLong => ApiError::Unprocessable {
                message: e.to_string(),
                violations: Vec::new(),
            },
            ReportError::Sla(e) => e.into(),
        }
    }
}

impl From<CheckError> for ApiError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Invalid(violations) => ApiError::refused(violations),
            CheckError::Stale { .. } => ApiError::Conflict(e.to_string()),
        }
    }
}

impl ApiError {
    /// 422 with every refusal, for loket staff to act on.
    pub fn refused(violations: Violations) -> Self {
        ApiError::Unprocessable {
            message: "the change breaks the integrity rules; see violations".into(),
            violations: violations.into_vec(),
        }
    }
}

/// Every request no route matches: a JSON 404 like any other.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("there is no such route".into()))
}

/// A method a route does not take, given the route table's names for the ones it does
/// (`read` is GET and HEAD).
pub fn method_not_allowed(methods: &[&str]) -> ApiError {
    let allow = methods
        .iter()
        .map(|m| match *m {
            "read" => "GET, HEAD".to_owned(),
            other => other.to_ascii_uppercase(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::MethodNotAllowed { allow }
}

/// Path values that do not parse (an id that is not a number): 404, as JSON.
pub fn path_error(e: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {e}")).into()
}

/// Query strings that do not parse: 400, as JSON.
pub fn query_error(
    e: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("the query is not valid: {e}")).into()
}

/// Request bodies that are not the JSON a route takes: 400, as JSON.
pub fn json_error(
    e: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("the body is not valid: {e}")).into()
}
