//! The read API for PGO and XIS nodes (SPEC §6): current lists under their legacy and native
//! URLs, the version index, archived versions and signatures, diffs, and the honoured query.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::encoding::{Accepted, Encoding};
use super::error::ApiError;
use super::served::{Representation, ServedVersion};
use crate::domain::{
    EntryDiff, GegevensdienstId, IndexedVersion, ListEntries, ListKind, Volgnummer,
    Zorgaanbiedernaam, served_at,
};
use crate::publication::VersionContent;

/// One client compares the content type verbatim: no parameters.
const CONTENT_TYPE_XML: &str = "application/xml";
/// Current lists are re-fetched at least this often, whatever their remaining validity.
const MAX_CURRENT_CACHE_SECONDS: i64 = 300;
const MAX_CURRENT_CACHE_CONTROL: &str = "public, max-age=300";

/// GET, and HEAD for the same resource (actix sends no body for HEAD).
fn read() -> actix_web::Route {
    route_table!(@method read)
}

route_table! {
    "/lists/zal/honoured" { read => honoured }
    "/lists/{list}" { read => current }
    "/lists/{list}/versions" { read => versions }
    "/lists/{list}/versions/{volgnummer}" { read => version }
    "/lists/{list}/versions/{volgnummer}/signature" { read => signature }
    "/lists/{list}/diff" { read => diff }
    "/lists/{list}/at" { read => at }
}

/// The legacy URLs (`/MedMij_Zorgaanbiederslijst.xml`, ...), one per list.
pub fn legacy_paths() -> impl Iterator<Item = String> {
    ListKind::ALL
        .into_iter()
        .map(|list| format!("/{}", crate::signing::list_uri(list)))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (list, path) in ListKind::ALL.into_iter().zip(legacy_paths()) {
        cfg.service(
            web::resource(path)
                .route(read().to(
                    move |req: HttpRequest,
                          state: web::Data<AppState>,
                          query: web::Query<LegacyQuery>| {
                        legacy(req, state, query, list)
                    },
                ))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(super::error::method_not_allowed(&["read"]))
                })),
        );
    }
    register_routes(cfg);
}

fn list_of(name: &str) -> Result<ListKind, ApiError> {
    name.parse()
        .map_err(|e: crate::domain::UnknownList| ApiError::NotFound(e.to_string()))
}

fn volgnummer_of(text: &str) -> Result<Volgnummer, ApiError> {
    Volgnummer::parse(text).map_err(|e| ApiError::NotFound(format!("no such version: {e}")))
}

/// Whether the client's copy is current (RFC 9110 §13.1: If-None-Match wins over
/// If-Modified-Since), and which of this version's representations it holds, when its ETag
/// says so: the 304 then names that one, so a cache never files its bytes under the ETag of
/// another compression.
fn not_modified<'a>(
    req: &HttpRequest,
    served: &'a ServedVersion,
) -> Option<Option<&'a Representation>> {
    if let Some(tags) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let mut tags = tags.split(',').map(str::trim);
        return tags.find_map(|t| match t {
            "*" => Some(None),
            t => served.with_etag(t).map(Some),
        });
    }
    req.headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| served.last_modified().timestamp() <= since.timestamp())
        .then_some(None)
}

/// A list document with validators, conditional answers and the pre-compressed coding the
/// request accepts best (`encoding.rs`).
pub fn list_response(
    req: &HttpRequest,
    served: &ServedVersion,
    cache_control: HeaderValue,
) -> HttpResponse {
    let accepted = Accepted::parse(
        req.headers()
            .get_all(header::ACCEPT_ENCODING)
            .filter_map(|v| v.to_str().ok()),
    );
    let encoding = accepted.choose(served.available().map(|r| (r.encoding, r.bytes.len())));
    let chosen = served.representation(encoding).unwrap_or(&served.identity);
    let unchanged = not_modified(req, served);
    let representation = unchanged.flatten().unwrap_or(chosen);
    let mut response = match unchanged {
        Some(_) => HttpResponse::NotModified(),
        None => HttpResponse::Ok(),
    };
    response
        .insert_header((header::ETAG, representation.etag_header.clone()))
        .insert_header((header::LAST_MODIFIED, served.last_modified_header.clone()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
    if unchanged.is_some() {
        return response.finish();
    }
    if representation.encoding != Encoding::Identity {
        response.insert_header((header::CONTENT_ENCODING, representation.encoding.token()));
    }
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_XML),
        ))
        .insert_header(("Content-Digest", representation.content_digest.clone()))
        .body(sized_body(&representation.bytes))
}

/// Large documents go out as a stream of zero-copy slices with their Content-Length: the HTTP
/// layer copies each slice into a small write buffer instead of growing one buffer to the whole
/// document for every response.
fn sized_body(bytes: &web::Bytes) -> actix_web::body::BoxBody {
    const SLICE: usize = 256 * 1024;
    if bytes.len() <= SLICE {
        return actix_web::body::BoxBody::new(bytes.clone());
    }
    let length = bytes.len() as u64;
    let bytes = bytes.clone();
    let slices = (0..bytes.len()).step_by(SLICE).map(move |start| {
        Ok::<_, std::convert::Infallible>(bytes.slice(start..(start + SLICE).min(bytes.len())))
    });
    actix_web::body::BoxBody::new(actix_web::body::SizedStream::new(
        length,
        futures_util::stream::iter(slices),
    ))
}

#[derive(Debug, Deserialize)]
pub struct LegacyQuery {
    api: Option<String>,
}

async fn legacy(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LegacyQuery>,
    list: ListKind,
) -> Result<HttpResponse, ApiError> {
    if let Some(api) = &query.api {
        let known = api.parse::<u32>().is_ok_and(|major| {
            state
                .services
                .config
                .server
                .legacy_api_majors
                .contains(&major)
        });
        if !known {
            return Err(ApiError::NotFound(format!(
                "api={api} is not served here; this node serves api majors {:?}",
                state.services.config.server.legacy_api_majors
            )));
        }
    }
    // The legacy URLs answer as they always did.
    serve_current(&req, &state, list, false)
}

async fn current(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve_current(&req, &state, list_of(&path)?, true)
}

/// Adds `Stelselnode-Log-Index`, the version's leaf in the transparency log (issue 26), to a
/// document answer once the node's log holds the leaf: what `/log/proof/inclusion?index=`
/// asks for.
fn with_log_index(
    response: &mut HttpResponse,
    state: &AppState,
    record: &crate::domain::VersionRecord,
) {
    if response.status() != actix_web::http::StatusCode::OK {
        return;
    }
    let log = &state.services.transparency;
    if let Some(index) = log.leaf_index(record.list, record.volgnummer) {
        response.headers_mut().insert(
            header::HeaderName::from_static("stelselnode-log-index"),
            HeaderValue::from(index),
        );
    }
}

fn serve_current(
    req: &HttpRequest,
    state: &AppState,
    list: ListKind,
    log_index: bool,
) -> Result<HttpResponse, ApiError> {
    let served = state.served.current(list).ok_or_else(|| {
        ApiError::Unavailable(format!(
            "no version of the {list} list has been published yet"
        ))
    })?;
    let now = state.services.clock.now();
    if now >= served.record.expires_at {
        // Fail closed: an expired list is never served as current.
        req.extensions_mut()
            .insert(super::observe::ExpiredListRefused);
        return Err(ApiError::Unavailable(format!(
            "the current {list} version has expired"
        )));
    }
    let max_age = (served.record.expires_at - now)
        .num_seconds()
        .clamp(0, MAX_CURRENT_CACHE_SECONDS);
    // Nearly always the maximum: a header made once rather than formatted per request (the
    // 304 path is a few microseconds; issue 12).
    let cache_control = match max_age {
        MAX_CURRENT_CACHE_SECONDS => HeaderValue::from_static(MAX_CURRENT_CACHE_CONTROL),
        seconds => HeaderValue::from_str(&format!("public, max-age={seconds}"))
            .expect("digits are a valid header value"),
    };
    let mut response = list_response(req, &served, cache_control);
    if log_index {
        with_log_index(&mut response, state, &served.record);
    }
    let not_modified = response.status() == actix_web::http::StatusCode::NOT_MODIFIED;
    state.metrics.count_fetch(list, not_modified);
    Ok(response)
}

async fn versions(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = list_of(&path)?;
    let records = state
        .services
        .publisher
        .versions(list)
        .await
        .map_err(ApiError::internal)?;
    let now = state.services.clock.now();
    let log = &state.services.transparency;
    let index: Vec<IndexedVersion> = records
        .into_iter()
        .map(|record| IndexedVersion {
            status: record.status_at(now),
            log_index: log.leaf_index(record.list, record.volgnummer),
            record,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(index))
}

/// An archived version; the current one comes from memory. Archived versions are fetched
/// rarely and are sent uncompressed rather than compressed per request.
async fn stored(
    state: &AppState,
    list: &str,
    volgnummer: &str,
) -> Result<Arc<ServedVersion>, ApiError> {
    let list = list_of(list)?;
    let volgnummer = volgnummer_of(volgnummer)?;
    if let Some(current) = state
        .served
        .current(list)
        .filter(|c| c.record.volgnummer == volgnummer)
    {
        return Ok(current);
    }
    let stored = state
        .services
        .publisher
        .stored_version(list, volgnummer)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("{list} has no version {volgnummer}")))?;
    refuse_purged(&stored.record)?;
    tokio::task::spawn_blocking(move || ServedVersion::from_stored(&stored, false))
        .await
        .map_err(ApiError::internal)?
        .map(Arc::new)
        .map_err(ApiError::internal)
}

/// A version whose bytes retention purged: 410, naming when (its record stays in the index).
fn refuse_purged(record: &crate::domain::VersionRecord) -> Result<(), ApiError> {
    match record.purged_at {
        Some(at) => Err(purged(record.list, record.volgnummer, at)),
        None => Ok(()),
    }
}

fn purged(list: ListKind, volgnummer: Volgnummer, at: DateTime<Utc>) -> ApiError {
    ApiError::Gone(format!(
        "{list} version {volgnummer} was purged at {at}: its validity ended longer ago than the archive retention"
    ))
}

/// Archived versions never change: cacheable for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

async fn version(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let served = stored(&state, &path.0, &path.1).await?;
    let mut response = list_response(&req, &served, HeaderValue::from_static(IMMUTABLE));
    with_log_index(&mut response, &state, &served.record);
    Ok(response)
}

async fn signature(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let served = stored(&state, &path.0, &path.1).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_XML),
        ))
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .body(served.signature.clone()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    t: String,
}

/// The list as it was served at instant `t`: the bytes of the version current then (or, when
/// none was, the newest in its grace period), with its Volgnummer and status at `t` in
/// headers; the other versions still honoured then (in grace) are named too.
async fn at(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<AtQuery>,
) -> Result<HttpResponse, ApiError> {
    let list = list_of(&path)?;
    let t = DateTime::parse_from_rfc3339(&query.t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::BadRequest("t must be an RFC 3339 instant".into()))?;
    if t > state.services.clock.now() {
        return Err(ApiError::NotFound(
            "t lies in the future: no version is known for it yet; /lists/{list} is the current one"
                .into(),
        ));
    }
    let honoured = state
        .services
        .publisher
        .versions_honoured_at(list, t)
        .await
        .map_err(ApiError::internal)?;
    let (record, status) = served_at(&honoured, t).ok_or_else(|| {
        ApiError::NotFound(format!("no version of the {list} list was honoured at {t}"))
    })?;
    let also: Vec<String> = honoured
        .iter()
        .filter(|v| v.volgnummer != record.volgnummer && v.status_at(t).is_honoured())
        .map(|v| v.volgnummer.to_string())
        .collect();
    let served = stored(&state, list.as_str(), &record.volgnummer.to_string()).await?;
    let mut response = list_response(&req, &served, HeaderValue::from_static("no-cache"));
    let headers = response.headers_mut();
    let value = |text: String| HeaderValue::from_str(&text).map_err(ApiError::internal);
    headers.insert(
        header::HeaderName::from_static("stelselnode-volgnummer"),
        value(record.volgnummer.to_string())?,
    );
    headers.insert(
        header::HeaderName::from_static("stelselnode-status"),
        value(format!("{status:?}").to_lowercase())?,
    );
    if !also.is_empty() {
        headers.insert(
            header::HeaderName::from_static("stelselnode-also-honoured"),
            value(also.join(", "))?,
        );
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: String,
    to: String,
}

#[derive(Debug, Serialize)]
struct Diff {
    list: ListKind,
    from: Volgnummer,
    to: Volgnummer,
    #[serde(flatten)]
    entries: EntryDiff,
}

/// The entries of a published version.
async fn content(
    state: &AppState,
    list: ListKind,
    volgnummer: Volgnummer,
) -> Result<Arc<ListEntries>, ApiError> {
    let content = state
        .services
        .publisher
        .version_content(list, volgnummer)
        .await
        .map_err(ApiError::internal)?;
    match content {
        VersionContent::Entries(entries) => Ok(entries),
        VersionContent::Purged { at } => Err(purged(list, volgnummer, at)),
        VersionContent::Missing => Err(ApiError::NotFound(format!(
            "{list} has no version {volgnummer}"
        ))),
    }
}

async fn diff(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let list = list_of(&path)?;
    let (from, to) = (volgnummer_of(&query.from)?, volgnummer_of(&query.to)?);
    let (before, after) = (
        content(&state, list, from).await?,
        content(&state, list, to).await?,
    );
    let diff = Diff {
        list,
        from,
        to,
        entries: before.diff(&after),
    };
    Ok(HttpResponse::Ok().json(diff))
}

#[derive(Debug, Deserialize)]
struct HonouredQuery {
    zorgaanbieder: String,
    gegevensdienst: String,
    at: Option<DateTime<Utc>>,
}

async fn honoured(
    state: web::Data<AppState>,
    query: web::Query<HonouredQuery>,
) -> Result<HttpResponse, ApiError> {
    let zorgaanbieder = Zorgaanbiedernaam::parse(query.zorgaanbieder.as_str())
        .map_err(|e| ApiError::BadRequest(format!("zorgaanbieder: {e}")))?;
    let gegevensdienst = GegevensdienstId::parse(query.gegevensdienst.as_str())
        .map_err(|e| ApiError::BadRequest(format!("gegevensdienst: {e}")))?;
    let at = query.at.unwrap_or_else(|| state.services.clock.now());
    let answer = state
        .services
        .publisher
        .honoured(&zorgaanbieder, &gegevensdienst, at)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(answer))
}
