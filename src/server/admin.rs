//! The admin listener: every route names the roles it admits; a certificate without one of
//! them gets 403 (audited, like every admin request, by `audit::audit`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, ResponseError, web};

use super::AppState;
use super::audit::note;
use super::error::ApiError;
use super::mutations_api as api;
use super::publications_api as publications;
use super::sla_api as sla;
use crate::roles::Role;
use crate::tls::ClientIdentity;

const STAFF: &[Role] = &[Role::Loket, Role::Beheer];
const BEHEER: &[Role] = &[Role::Beheer];

route_table! {
    "/mutations" [STAFF] { post => api::submit, get => api::list }
    "/mutations/validate" [STAFF] { post => api::validate }
    "/mutations/{id}" [STAFF] { get => api::one }
    "/mutations/{id}/notifications" [STAFF] { get => sla::notifications }
    // Only the submitter: checked with the mutation.
    "/mutations/{id}/withdraw" [STAFF] { post => api::withdraw }
    // Never the submitter: checked with the mutation.
    "/mutations/{id}/approve" [BEHEER] { post => api::approve }
    "/mutations/{id}/reject" [BEHEER] { post => api::reject }
    "/entries/{list}/{key}" [STAFF] { get => api::entry }
    "/publications" [BEHEER] { post => publications::publish }
    "/releases/retire-interface-version" [BEHEER] { post => publications::retire_interface_version }
    "/audit" [BEHEER] { get => super::audit::audit_log }
    "/sla/report" [BEHEER] { get => sla::report }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    register_routes(cfg);
    super::ui::routes(cfg);
    // Reading lists and archives on the admin listener is for beheer.
    cfg.service(
        web::scope("")
            .wrap(from_fn(|r, n| require(BEHEER, r, n)))
            .configure(super::read_api::routes),
    );
}

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
