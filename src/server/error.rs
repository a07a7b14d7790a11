//! The HTTP error boundary: every handler error maps to a status here, in one place, and
//! internal details are logged once and never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::Violation;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("this certificate has no role that allows this request")]
    Forbidden,
    #[error("{message}")]
    Unprocessable {
        message: String,
        violations: Vec<Violation>,
    },
    #[error("{0}")]
    Conflict(String),
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
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body =
            json!({ "error": self.status_code().canonical_reason(), "message": self.to_string() });
        if let ApiError::Unprocessable { violations, .. } = self {
            body["violations"] = json!(violations);
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}
