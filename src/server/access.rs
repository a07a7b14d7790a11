//! Who may use an admin route: the role lists every route table names, and the guard that
//! admits a request whose client certificate carries one of them. Shared by the JSON API
//! (`admin.rs`) and the web application (`ui/`), so neither imports the other.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use super::AppState;
use super::audit::note;
use super::error::ApiError;
use crate::roles::Role;
use crate::tls::ClientIdentity;

/// Loket and beheer staff: submitting, reading, withdrawing their own.
pub(super) const STAFF: &[Role] = &[Role::Loket, Role::Beheer];
/// Beheer only: deciding, publishing, the audit log, the archive.
pub(super) const BEHEER: &[Role] = &[Role::Beheer];

/// Lets the request through when the client certificate carries one of `roles` (and puts
/// its roles on the request); otherwise 403, closing the connection of a certificate that
/// has no role at all (say, an identity just removed from the configuration).
pub(super) async fn require(
    roles: &'static [Role],
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("state is registered");
    let held = request
        .conn_data::<ClientIdentity>()
        .map(|i| state.roles_of(i))
        .unwrap_or_default();
    if held.iter().any(|r| roles.contains(r)) {
        request.extensions_mut().insert(held);
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let needed = roles.iter().map(|r| r.as_str()).collect::<Vec<_>>();
    let reason = format!("the {} role is required", needed.join(" or "));
    tracing::info!(
        client = %request.conn_data::<ClientIdentity>().map_or_else(|| "unknown".into(), ClientIdentity::subject),
        path = request.match_pattern().as_deref().unwrap_or("-"),
        %reason,
        "admin request refused"
    );
    note(request.request(), |n| n.reason = Some(reason));
    let mut response = ApiError::Forbidden.error_response();
    if held.is_empty() {
        // Not (or no longer) staff: nothing more to do on this connection.
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(request.into_response(response).map_into_right_body())
}
