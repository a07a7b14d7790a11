//! The admin listener: every route names the role it needs; a certificate without it gets
//! 403, and the refusal is audited.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use super::AppState;
use super::error::ApiError;
use crate::roles::{Role, roles_of};
use crate::storage::{AuditOutcome, AuditRecord};
use crate::tls::ClientIdentity;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Reading lists and archives on the admin listener is for beheer.
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(|r, n| {
                require(Role::Beheer, r, n)
            }))
            .configure(super::read_api::routes),
    );
}

/// Lets the request through when the client certificate carries `role`; otherwise 403 and
/// an audit record.
async fn require(
    role: Role,
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("state is registered");
    let identity = request.conn_data::<ClientIdentity>().cloned();
    let roles = identity
        .as_ref()
        .map(|i| roles_of(i, &state.config.admin.identities))
        .unwrap_or_default();
    if roles.contains(&role) {
        request.extensions_mut().insert(roles);
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let record = AuditRecord {
        at: state.clock.now(),
        actor_subject: identity
            .as_ref()
            .map_or_else(|| "unknown".into(), ClientIdentity::subject),
        actor_fingerprint: identity.as_ref().map(|i| i.fingerprint.clone()),
        role: None,
        action: format!(
            "{} {}",
            request.method(),
            request
                .match_pattern()
                .unwrap_or_else(|| request.path().to_owned())
        ),
        object: None,
        on_behalf_of: None,
        outcome: AuditOutcome::Refused,
        reason: Some(format!("the {} role is required", role.as_str())),
    };
    if let Err(e) = state.storage.append_audit(&record).await {
        // A refusal that cannot be audited is still a refusal.
        tracing::error!(error = %e, "cannot audit a refused request");
    }
    tracing::info!(client = %record.actor_subject, action = %record.action, "admin request refused: no role");
    let response = ApiError::Forbidden.error_response();
    Ok(request.into_response(response).map_into_right_body())
}
