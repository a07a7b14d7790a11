//! The staff web application (issue 15) on the admin listener, under `/ui`: server-rendered
//! HTML (maud: checked and escaped at compile time), progressively enhanced with the vendored
//! htmx, Dutch for its Dutch users. It authenticates by the same client certificates, guards
//! every route with the same roles, and calls the same `MutationWorkflow` as the JSON API:
//! there is no second implementation of any rule. Every request is audited like the API's.
//! Forms that change anything carry a CSRF token and must come from the application itself
//! (`csrf.rs`).

mod assets;
mod audit_log;
mod csrf;
mod layout;
mod lists;
mod mutation;
mod new_mutation;
mod queue;
mod words;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

pub use csrf::{CSRF_SECRET, CsrfKey};
use layout::Viewer;

use super::AppState;
use super::access::{BEHEER, STAFF, require};
use super::error::ApiError;
use crate::mutations::Actor;

route_table! {
    "/ui" [STAFF] { read => queue::page_handler }
    "/ui/" [STAFF] { read => home_with_slash }
    "/ui/mutaties/{id}" [STAFF] { read => mutation::page_handler }
    "/ui/nieuw/{list}" [STAFF] { read => new_mutation::form_handler, post => new_mutation::post_handler }
    // Never the submitter: the workflow refuses, whatever the page showed.
    "/ui/mutaties/{id}/goedkeuren" [BEHEER] { post => mutation::approve }
    "/ui/mutaties/{id}/afwijzen" [BEHEER] { post => mutation::reject }
    // Only the submitter: checked with the mutation.
    "/ui/mutaties/{id}/intrekken" [STAFF] { post => mutation::withdraw }
    "/ui/lijsten" [STAFF] { read => lists::overview }
    "/ui/lijsten/{list}" [STAFF] { read => lists::list_page }
    "/ui/lijsten/{list}/publiceren" [BEHEER] { post => lists::publish }
    "/ui/audit" [BEHEER] { read => audit_log::page_handler }
    "/ui/static/stelselnode-1.css" [STAFF] { read => assets::stylesheet }
    "/ui/static/htmx-2.0.11.min.js" [STAFF] { read => assets::htmx }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    register_routes(cfg);
}

/// `/ui/`, as people type it: the application's home is `/ui`.
async fn home_with_slash(_viewer: Viewer) -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/ui"))
        .finish()
}

impl FromRequest for Viewer {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let viewer = Actor::from_request(request, payload)
            .into_inner()
            .and_then(|actor| {
                let state = request
                    .app_data::<web::Data<AppState>>()
                    .ok_or_else(|| ApiError::internal("the application state is missing"))?;
                let csrf = state
                    .ui_csrf
                    .token(&actor.fingerprint, state.services.clock.now());
                Ok(Viewer { actor, csrf })
            });
        std::future::ready(viewer)
    }
}
