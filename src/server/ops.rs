//! The ops listener: liveness, readiness (failing closed, SPEC §8; the database answering),
//! metrics, and who holds the singleton jobs' leases.

use actix_web::{HttpResponse, web};
use chrono::Duration;
use serde_json::json;

use super::AppState;
use crate::domain::ListKind;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/healthz",
        web::get().to(|| async { HttpResponse::Ok().body("ok\n") }),
    )
    .route("/readyz", web::get().to(readyz))
    .route("/metrics", web::get().to(metrics))
    .route("/leases", web::get().to(leases));
}

/// Who holds each singleton job's lease, as the database says, and this replica's name.
async fn leases(state: web::Data<AppState>) -> HttpResponse {
    let leases = &state.services.leases;
    match state.services.storage.leases().await {
        Ok(records) => HttpResponse::Ok().json(json!({
            "this_replica": leases.holder(),
            "leases": records.iter().map(|r| json!({
                "name": r.name,
                "holder": r.holder,
                "fence": r.fence,
                "expires_in_seconds": r.expires_in.num_milliseconds() as f64 / 1000.0,
            })).collect::<Vec<_>>(),
        })),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the leases");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "error": "the database cannot be used" }))
        }
    }
}

/// Why the node is not ready; empty when it is.
pub fn readiness_problems(state: &AppState) -> Vec<String> {
    let now = state.services.clock.now();
    let mut problems = Vec::new();
    for list in ListKind::ALL {
        match state.served.current(list) {
            None => problems.push(format!("{list}: no signed current version")),
            Some(served) if served.signature.is_empty() => {
                problems.push(format!("{list}: the current version has no signature"));
            }
            Some(served) if now >= served.record.expires_at => problems.push(format!(
                "{list}: the current version expired at {}",
                served.record.expires_at
            )),
            Some(_) => {}
        }
        if let Some(failure) = state.services.publisher.health(list).last_failure {
            problems.push(format!("{list}: the last publication failed: {failure}"));
        }
    }
    let margin = Duration::days(i64::from(
        state.services.config.server.signing_certificate_margin_days,
    ));
    for crl in state.tls.crls() {
        if let Some(next_update) = crl.next_update
            && next_update <= now
        {
            problems.push(format!(
                "the CRL {} expired at {next_update}: revocations since then are unknown",
                crl.file
            ));
        }
    }
    if let Some(trouble) = state
        .services
        .publisher
        .signing_key()
        .ok()
        .and_then(|key| key.token_trouble())
    {
        problems.push(format!(
            "{trouble}; nothing can be published until the token signs again"
        ));
    }
    match state.services.publisher.signing_certificate_expiry() {
        Some(not_after) if not_after - now <= margin => {
            problems.push(format!(
                "the signing certificate expires at {not_after}, within the {} day margin",
                margin.num_days()
            ));
        }
        Some(_) => {}
        None => problems.push("the signing certificate's validity cannot be read".into()),
    }
    problems
}

/// How long readiness waits for the database.
const DATABASE_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the database cannot be used now, asked with a cheap read. The lists are still served
/// from memory meanwhile, but nothing can be changed or published (issue 23).
async fn database_problem(state: &AppState) -> Option<String> {
    let probe = tokio::time::timeout(DATABASE_PROBE, state.services.storage.revisions()).await;
    let why = match probe {
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "it did not answer within {} seconds",
            DATABASE_PROBE.as_secs()
        ),
    };
    let until = ListKind::ALL
        .into_iter()
        .filter_map(|list| state.served.current(list).map(|s| s.record.expires_at))
        .min();
    Some(match until {
        Some(until) => format!(
            "the database cannot be used ({why}): changes are refused; the current lists are \
             served from memory until {until}"
        ),
        None => format!("the database cannot be used ({why})"),
    })
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut problems = readiness_problems(&state);
    problems.extend(database_problem(&state).await);
    match problems.is_empty() {
        true => HttpResponse::Ok().json(json!({ "ready": true })),
        false => {
            HttpResponse::ServiceUnavailable().json(json!({ "ready": false, "problems": problems }))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    set_state_gauges(&state);
    let mut body = state.metrics.render();
    // The SLA figures come from the database. When it cannot answer, the rest of the scrape
    // (list freshness above all) still matters, so it is served with the SLA figures marked
    // unavailable rather than failed as a whole.
    let sla = state.services.sla.status().await;
    if let Err(e) = &sla {
        tracing::error!(error = %e, "the SLA figures cannot be computed for this scrape");
    }
    body.extend(crate::sla::exposition(sla.as_ref().ok()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// The gauges that describe the state now: lists, CRLs, the signing certificate, refusals,
/// leases, the transparency log.
fn set_state_gauges(state: &AppState) {
    let now = state.services.clock.now();
    let m = &state.metrics;
    let log = &state.services.transparency;
    m.transparency_log_leaves
        .set(i64::try_from(log.size()).unwrap_or(i64::MAX));
    m.transparency_log_signing_refused
        .set(i64::from(log.signing_refused().is_some()));
    for witness in log.witnesses() {
        let name = [witness.name()];
        m.transparency_witness_failing
            .with_label_values(&name)
            .set(i64::from(witness.failing()));
        m.transparency_witness_cosigned_leaves
            .with_label_values(&name)
            .set(
                witness
                    .cosigned()
                    .map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            );
    }
    let leases = state.services.leases.status();
    for job in crate::leases::Singleton::ALL {
        let status = leases.get(&job).copied().unwrap_or_default();
        m.lease_held
            .with_label_values(&[job.as_str()])
            .set(i64::from(status.fence.is_some()));
        for (change, count) in [
            ("acquired", status.acquired),
            ("lost", status.lost),
            ("released", status.released),
        ] {
            // Mirrors the lease keeper's own count, which only grows.
            let counter = m.lease_changes.with_label_values(&[job.as_str(), change]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
    }
    for list in ListKind::ALL {
        let health = state.services.publisher.health(list);
        m.publication_failing
            .with_label_values(&[list.as_str()])
            .set(i64::from(health.last_failure.is_some()));
        for (reason, count) in [("failed", health.failures), ("refused", health.refusals)] {
            // Mirrors the publisher's own count, which only grows.
            let counter = m
                .publication_failures
                .with_label_values(&[list.as_str(), reason]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        if let Some(served) = state.served.current(list) {
            let labels = [list.as_str()];
            m.list_volgnummer
                .with_label_values(&labels)
                .set(served.record.volgnummer.get());
            m.list_seconds_since_publication
                .with_label_values(&labels)
                .set((now - served.record.valid_from).num_seconds());
            m.list_seconds_until_expiry
                .with_label_values(&labels)
                .set((served.record.expires_at - now).num_seconds());
        }
    }
    for crl in state.tls.crls() {
        if let Some(next_update) = crl.next_update {
            m.crl_seconds_until_next_update
                .with_label_values(&[crl.file.as_str()])
                .set((next_update - now).num_seconds());
        }
    }
    if let Some(not_after) = state.services.publisher.signing_certificate_expiry() {
        m.signing_certificate_seconds_until_expiry
            .set((not_after - now).num_seconds());
    }
    let key = state.services.publisher.signing_key().ok();
    m.signing_key_in_token.set(i64::from(
        key.as_ref().is_some_and(|key| key.in_token().is_some()),
    ));
    m.signing_token_failing
        .set(i64::from(key.and_then(|key| key.token_trouble()).is_some()));
    let check = &state.services.archive_check;
    m.archive_check_problems.set(
        check
            .last_problems
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    m.archive_check_last_run
        .set(check.last_run.load(std::sync::atomic::Ordering::Relaxed));
    let refusals = state.tls.refusals();
    let load =
        |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed) as i64;
    m.tls_handshakes_refused
        .with_label_values(&["untrusted_certificate"])
        .set(load(&refusals.untrusted));
    m.tls_handshakes_refused
        .with_label_values(&["not_on_whitelist"])
        .set(load(&refusals.not_whitelisted));
    m.tls_handshakes_refused
        .with_label_values(&["trust_changed"])
        .set(load(&refusals.trust_changed));
}
