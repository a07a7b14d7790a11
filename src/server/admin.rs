//! The admin listener: every route names the roles it admits; a certificate without one of
//! them gets 403 (audited, like every admin request, by `audit::audit`).

use actix_web::middleware::from_fn;
use actix_web::web;

use super::access::{BEHEER, STAFF, require};
use super::mutations_api as api;
use super::publications_api as publications;
use super::sla_api as sla;

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
    // Reading lists, archives and the transparency log on the admin listener is for beheer.
    cfg.service(
        web::scope("")
            .wrap(from_fn(|r, n| require(BEHEER, r, n)))
            .configure(super::read_api::routes)
            .configure(super::log_api::routes),
    );
}
