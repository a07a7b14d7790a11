//! The application's own stylesheet and the vendored htmx (2.0.11, 0BSD, `assets/`), served
//! from the binary: no CDN, nothing fetched at run time.

use actix_web::HttpResponse;
use actix_web::http::header;

const STYLESHEET: &str = include_str!("../../../assets/stelselnode.css");
const HTMX: &str = include_str!("../../../assets/htmx-2.0.11.min.js");

/// Paths under which the assets are served; the version in the name lets them be cached.
pub const STYLESHEET_PATH: &str = "/ui/static/stelselnode-1.css";
pub const HTMX_PATH: &str = "/ui/static/htmx-2.0.11.min.js";

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "private, max-age=86400"))
        .body(body)
}

pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn htmx() -> HttpResponse {
    asset("text/javascript; charset=utf-8", HTMX)
}
