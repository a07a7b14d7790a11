//! Observability of every listener: request counts and latencies by route pattern (never by
//! raw path, so the label set stays bounded), the access log, and on the node listener the
//! availability SLI's good and bad answers (issue 24).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::AppState;
use crate::metrics::{Metrics, NodeAnswer};
use crate::tls::ClientIdentity;

/// A route's metric handles, resolved once per path and worker thread.
struct RouteMetrics {
    route: String,
    duration: prometheus::Histogram,
    by_status: std::cell::RefCell<Vec<(u16, prometheus::IntCounter)>>,
}

thread_local! {
    /// Path → route metrics, per listener. Resolving the route pattern re-runs the router and
    /// the labelled lookups hash their labels: on the 304 path that cost more than the handler.
    /// Bounded: cleared when it grows past `ROUTE_CACHE_LIMIT` paths.
    static ROUTE_CACHE: std::cell::RefCell<std::collections::HashMap<&'static str, std::collections::HashMap<String, std::rc::Rc<RouteMetrics>>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}
const ROUTE_CACHE_LIMIT: usize = 1024;

fn route_metrics(
    listener: &'static str,
    request: &ServiceRequest,
    metrics: &Metrics,
) -> std::rc::Rc<RouteMetrics> {
    ROUTE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let paths = cache.entry(listener).or_default();
        if let Some(found) = paths.get(request.path()) {
            return found.clone();
        }
        if paths.len() >= ROUTE_CACHE_LIMIT {
            paths.clear();
        }
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let resolved = std::rc::Rc::new(RouteMetrics {
            duration: metrics
                .http_request_duration
                .with_label_values(&[listener, &route]),
            route,
            by_status: std::cell::RefCell::new(Vec::new()),
        });
        paths.insert(request.path().to_owned(), resolved.clone());
        resolved
    })
}

/// Put in a request's extensions by a handler that refused to serve an expired current list
/// (503, fail closed), so the availability SLI counts the answer as `NodeAnswer::Expired`.
pub(super) struct ExpiredListRefused;

/// Counts and times every request by listener and route pattern (never by raw path, so
/// the label set stays bounded), and writes the access log.
pub(super) async fn observe(
    listener: &'static str,
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let route = metrics
        .as_ref()
        .map(|m| route_metrics(listener, &request, m));
    // The access log names the client by its certificate, never by request content.
    let logged =
        tracing::enabled!(target: "stelselnode::access", tracing::Level::INFO).then(|| {
            let client = request
                .conn_data::<ClientIdentity>()
                .map(ClientIdentity::subject);
            (request.method().clone(), client)
        });
    let response = next.call(request).await?;
    let status = response.status();
    let elapsed = started.elapsed();
    if let (Some(metrics), Some(route)) = (&metrics, &route) {
        let mut by_status = route.by_status.borrow_mut();
        let counter = match by_status.iter().find(|(code, _)| *code == status.as_u16()) {
            Some((_, counter)) => counter.clone(),
            None => {
                let counter = metrics.http_requests.with_label_values(&[
                    listener,
                    &route.route,
                    status.as_str(),
                ]);
                by_status.push((status.as_u16(), counter.clone()));
                counter
            }
        };
        counter.inc();
        route.duration.observe(elapsed.as_secs_f64());
        if listener == "node" {
            // Only a 5xx can be an expired list: the 304 path skips the extensions lookup.
            let expired = status.is_server_error()
                && response
                    .request()
                    .extensions()
                    .contains::<ExpiredListRefused>();
            if let Some(answer) = NodeAnswer::classify(status.as_u16(), elapsed, expired) {
                metrics.count_node_answer(answer);
            }
        }
    }
    if let Some((method, client)) = logged {
        tracing::info!(target: "stelselnode::access", listener, %method,
            route = route.as_ref().map_or("-", |r| r.route.as_str()), status = status.as_u16(),
            micros = elapsed.as_micros() as u64, client = client.as_deref().unwrap_or("-"), "request");
    }
    Ok(response)
}
