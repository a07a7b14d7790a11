//! The transparency log for PGO/XIS nodes and beheer (issue 26, C2SP `tlog-tiles`): the signed
//! checkpoint, short-lived; the tiles of hashes and of entries, and an inclusion or
//! consistency proof in one request, immutable. Served from the node's memory
//! (`TransparencyLog`), which catches up after every publication and with the refresh loop.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use crate::transparency::TileRequest;

/// A checkpoint changes with every publication: clients may keep it a few seconds.
const CHECKPOINT_CACHE_CONTROL: &str = "public, max-age=5";
/// A tile's bytes never change (a partial tile has its width in its name), nor does a proof
/// between two given tree sizes.
const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

route_table! {
    "/log/checkpoint" { read => checkpoint }
    "/log/tile/{tile:.*}" { read => tile }
    "/log/proof/inclusion" { read => inclusion }
    "/log/proof/consistency" { read => consistency }
}

/// A proof, its hashes in base64 as in checkpoints, ordered as RFC 9162 §2.1.3 and §2.1.4
/// give them.
#[derive(Serialize)]
struct Proof {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<u64>,
    tree_size: u64,
    hashes: Vec<String>,
}

impl Proof {
    fn response(self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((
                header::CACHE_CONTROL,
                HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
            ))
            .json(self)
    }
}

fn base64_hashes(hashes: Vec<[u8; 32]>) -> Vec<String> {
    hashes.iter().map(|h| BASE64.encode(h)).collect()
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

/// That leaf `index` is in the tree of `tree_size` leaves (a checkpoint's size).
async fn inclusion(
    state: web::Data<AppState>,
    query: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let InclusionQuery { index, tree_size } = query.into_inner();
    let hashes = state
        .services
        .transparency
        .inclusion_proof(index, tree_size)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    Ok(Proof {
        index: Some(index),
        from: None,
        tree_size,
        hashes: base64_hashes(hashes),
    }
    .response())
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    tree_size: u64,
}

/// That the tree of `from` leaves is a prefix of the tree of `tree_size` leaves.
async fn consistency(
    state: web::Data<AppState>,
    query: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let ConsistencyQuery { from, tree_size } = query.into_inner();
    let hashes = state
        .services
        .transparency
        .consistency_proof(from, tree_size)
        .map_err(|e| ApiError::NotFound(e.to_string()))?;
    Ok(Proof {
        index: None,
        from: Some(from),
        tree_size,
        hashes: base64_hashes(hashes),
    }
    .response())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    register_routes(cfg);
}

async fn checkpoint(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let signed = state
        .services
        .transparency
        .checkpoint()
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
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
            HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
        ))
        .body(bytes))
}
