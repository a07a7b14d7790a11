//! CSRF protection for the web forms. A client certificate is an ambient credential, like a
//! cookie: a page on another origin could make the browser POST to the admin listener with it.
//! So every state-changing form carries a token bound to the certificate and the day (HMAC
//! with a secret every replica shares, held in the database), and the browser's own
//! `Sec-Fetch-Site` / `Origin` headers must say the request comes from the UI itself.

use actix_web::HttpRequest;
use actix_web::http::header;
use aws_lc_rs::hmac;
use chrono::{DateTime, Duration, Utc};

use super::Viewer;
use crate::server::AppState;
use crate::server::audit::note;
use crate::server::error::ApiError;

/// Signs and checks tokens. The key is the database's `ui-csrf` secret, made by the first
/// replica that started: a form opened on one replica (or before a restart) is accepted by
/// every other behind a load balancer without affinity (issue 24).
pub struct CsrfKey(hmac::Key);

/// The name of the key among the node's shared secrets.
pub const CSRF_SECRET: &str = "ui-csrf";

impl CsrfKey {
    /// 32 random bytes: a candidate for the shared secret.
    pub fn candidate() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system has randomness");
        bytes
    }

    pub fn from_secret(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn message(fingerprint: &str, day: i64) -> String {
        format!("stelselnode-ui-form\n{fingerprint}\n{day}")
    }

    /// The token for forms shown to the certificate `fingerprint` at `now`.
    pub fn token(&self, fingerprint: &str, now: DateTime<Utc>) -> String {
        let day = now.timestamp().div_euclid(86_400);
        let tag = hmac::sign(&self.0, Self::message(fingerprint, day).as_bytes());
        crate::signing::hex(tag.as_ref())
    }

    /// Whether `token` was made for `fingerprint` today or yesterday (a form opened just
    /// before midnight still works), compared in constant time.
    pub fn check(&self, token: &str, fingerprint: &str, now: DateTime<Utc>) -> bool {
        let Some(tag) = decode_hex(token) else {
            return false;
        };
        [now, now - Duration::days(1)].into_iter().any(|at| {
            let day = at.timestamp().div_euclid(86_400);
            hmac::verify(&self.0, Self::message(fingerprint, day).as_bytes(), &tag).is_ok()
        })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a form post is refused, if it is: the browser says it comes from another site, or its
/// `Origin` is not the admin listener's own.
fn cross_origin(request: &HttpRequest) -> Option<&'static str> {
    let value = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site")
        && site != "same-origin"
    {
        return Some("the form was not sent from the staff application (Sec-Fetch-Site)");
    }
    if let Some(origin) = value(header::ORIGIN.as_str()) {
        // The authority the request was sent to: the URI's over HTTP/2, `Host` over HTTP/1.1.
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| value(header::HOST.as_str()));
        if authority.is_none_or(|own| origin != format!("https://{own}")) {
            return Some("the form was sent from another origin");
        }
    }
    None
}

/// A form post may go on: sent from the application itself, with a token made for this
/// certificate. A refusal is noted for the audit record and answered 403.
pub fn check_form(
    request: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    token: &str,
) -> Result<(), ApiError> {
    let fingerprint = &viewer.actor.fingerprint;
    let refusal = cross_origin(request).or_else(|| {
        (!state
            .ui_csrf
            .check(token, fingerprint, state.services.clock.now()))
        .then_some("the form's CSRF token is missing, expired or not yours; open the page again")
    });
    match refusal {
        Some(reason) => {
            note(request, |n| n.reason = Some(reason.to_owned()));
            tracing::info!(reason, "web form refused");
            Err(ApiError::NotAllowed(reason.to_owned()))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_the_certificate_and_the_day() {
        let key = CsrfKey::from_secret(&CsrfKey::candidate());
        let now: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let token = key.token("ab12", now);
        assert!(key.check(&token, "ab12", now));
        assert!(
            key.check(&token, "ab12", now + Duration::hours(20)),
            "until tomorrow"
        );
        assert!(!key.check(&token, "ab12", now + Duration::days(3)));
        assert!(!key.check(&token, "cd34", now), "another certificate");
        assert!(
            !CsrfKey::from_secret(&CsrfKey::candidate()).check(&token, "ab12", now),
            "another process"
        );
        assert!(!key.check("not a token", "ab12", now));
    }
}
