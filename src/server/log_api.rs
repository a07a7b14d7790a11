//! The transparency log for PGO/XIS nodes and beheer (issue 26, C2SP `tlog-tiles`): the signed
//! checkpoint, short-lived, and the tiles of hashes and of entries, immutable. Served from
//! the node's memory (`TransparencyLog`), which catches up after every publication and with
//! the refresh loop.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use super::AppState;
use super::error::ApiError;
use crate::transparency::TileRequest;

/// A checkpoint changes with every publication: clients may keep it a few seconds.
const CHECKPOINT_CACHE_CONTROL: &str = "public, max-age=5";
/// A tile's bytes never change (a partial tile has its width in its name).
const TILE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

route_table! {
    "/log/checkpoint" { read => checkpoint }
    "/log/tile/{tile:.*}" { read => tile }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    register_routes(cfg);
}

async fn checkpoint(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let signed = state.services.transparency.checkpoint().ok_or_else(|| {
        ApiError::Unavailable(
            "this node has no transparency log key (transparency.key_file)".into(),
        )
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(CHECKPOINT_CACHE_CONTROL),
        ))
        .body(signed))
}

async fn tile(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no such tile in the log".into());
    let request = TileRequest::parse(&path).ok_or_else(not_found)?;
    let bytes = state
        .services
        .transparency
        .tile(&request)
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(TILE_CACHE_CONTROL),
        ))
        .body(bytes))
}
