//! The HTTPS server: the node listener (mTLS, Whitelist in the handshake), the admin
//! listener (mTLS, roles by certificate) and the plain-HTTP ops listener.
//!
//! `app.rs` starts the node and its background work; `state.rs` is what every handler
//! reaches (the services, and what only the server has); `observe.rs` is the metrics and
//! access-log middleware; each listener declares its routes once with `route_table!`
//! (`read_api.rs`, `admin.rs`, `ops.rs`); handler files (`mutations_api.rs`,
//! `publications_api.rs`, `read_api.rs`) extract, call a service and answer, and never import
//! each other; `error.rs` is the one place errors become HTTP; `audit.rs` records every admin
//! request and reads the audit log.

// Request text is never sliced or indexed where it could panic (issue 11).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

/// Declares a listener's routes once: `register_routes` adds them to an app and `ROUTES`
/// lists them as (method, path pattern), so a test can hold `docs/openapi.yaml` to every
/// route that exists. Each path names its guard (the roles it admits) when it has one.
macro_rules! route_table {
    ($( $path:literal $([$guard:expr])? { $($method:ident => $handler:expr),+ $(,)? } )*) => {
        /// Every route of this listener: (method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path) ),+ ),* ];

        fn register_routes(cfg: &mut actix_web::web::ServiceConfig) {
            $( cfg.service(
                actix_web::web::resource($path)
                    $( .wrap(actix_web::middleware::from_fn(move |r, n| require($guard, r, n))) )?
                    $( .route(route_table!(@method $method).to($handler)) )+
                    .default_service(actix_web::web::to(|| async {
                        Err::<actix_web::HttpResponse, _>(
                            super::error::method_not_allowed(&[$( stringify!($method) ),+]),
                        )
                    }))
            ); )*
        }
    };
    (@method get) => { actix_web::web::get() };
    (@method post) => { actix_web::web::post() };
    // GET, and HEAD for the same resource (actix sends no body for HEAD).
    (@method read) => {
        actix_web::web::route().guard(
            actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()),
        )
    };
}

mod access;
mod admin;
mod app;
mod audit;
mod encoding;
mod error;
mod log_api;
mod mutations_api;
mod observe;
mod ops;
mod publications_api;
mod query;
mod read_api;
mod served;
mod sla_api;
mod state;
mod trust;
mod ui;

pub use admin::ROUTES as ADMIN_ROUTES;
pub use app::{Application, StartError};
pub use encoding::Encoding;
pub use error::ApiError;
pub use log_api::ROUTES as LOG_ROUTES;
pub use ops::readiness_problems;
pub use read_api::{ROUTES as READ_ROUTES, legacy_paths};
pub use served::{RefreshError, ServedLists, ServedVersion};
pub use state::AppState;
pub use ui::ROUTES as UI_ROUTES;
