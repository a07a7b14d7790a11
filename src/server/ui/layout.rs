//! The frame of every page: who is signed in (subject and roles), the navigation, the
//! security headers; and how a refusal is shown to a person instead of as JSON.

use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::assets::{HTMX_PATH, STYLESHEET_PATH};
use super::words::{error_text, field_label};
use crate::mutations::Actor;
use crate::roles::Role;
use crate::server::error::ApiError;

/// No script or style but our own files; no framing; forms only to ourselves.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'; \
     form-action 'self'; base-uri 'none'; object-src 'none'";

/// Who looks at the page, and the CSRF token their forms carry.
pub struct Viewer {
    pub actor: Actor,
    pub csrf: String,
}

impl Viewer {
    pub fn is_beheer(&self) -> bool {
        self.actor.roles.contains(&Role::Beheer)
    }
}

/// A whole page with status 200.
pub fn page(title: &str, viewer: &Viewer, body: Markup) -> HttpResponse {
    respond(HttpResponse::Ok(), title, viewer, body)
}

fn respond(
    mut builder: actix_web::HttpResponseBuilder,
    title: &str,
    viewer: &Viewer,
    body: Markup,
) -> HttpResponse {
    let roles = Role::label(&viewer.actor.roles);
    let markup = html! {
        (DOCTYPE)
        html lang="nl" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx must not add an inline style element: the CSP forbids it.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " — stelselnode" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                script src=(HTMX_PATH) defer {}
            }
            body {
                header {
                    nav aria-label="Hoofdmenu" {
                        a href="/ui" { "Werkvoorraad" }
                        a href="/ui/nieuw/zal" { "Nieuwe Zorgaanbieder" }
                        a href="/ui/nieuw/whitelist" { "Nieuwe Whitelist-host" }
                        a href="/ui/nieuw/gnl" { "Nieuwe Gegevensdienstnaam" }
                        a href="/ui/lijsten" { "Lijsten" }
                        @if viewer.is_beheer() { a href="/ui/audit" { "Audit" } }
                    }
                    p { "Aangemeld als " strong { (viewer.actor.subject) } " (" (roles) ")" }
                }
                main id="inhoud" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    builder
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Not no-referrer: with it browsers send `Origin: null` on form posts, and the CSRF
        // check needs the real one. Nothing leaves for other sites.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// A refusal or failure as a page, with the status the JSON API would give.
pub fn error_page(viewer: &Viewer, error: ApiError) -> HttpResponse {
    let body = html! {
        div.fout role="alert" { (error_text(&error)) }
        p { a href="/ui" { "Terug naar de werkvoorraad" } }
    };
    respond(
        HttpResponse::build(error.status_code()),
        "Niet gelukt",
        viewer,
        body,
    )
}

/// An instant as the loket reads it: Europe/Amsterdam, to the minute.
pub fn local(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Amsterdam)
        .format("%d-%m-%Y %H:%M")
        .to_string()
}

/// A query-string value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A JSON value flattened to `path → text`, for a field-by-field comparison.
fn flatten(value: &Value, path: String, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                let next = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, next, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            out.insert(path, s.clone());
        }
        // An absent optional value: the table shows "—" for it.
        Value::Null => {}
        other => {
            out.insert(path, other.to_string());
        }
    }
}

pub fn fields(value: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(v) = value {
        flatten(v, String::new(), &mut out);
    }
    out
}

pub fn diff_table(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Markup {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    html! {
        div.tabel { table {
            caption.visually-hidden { "Wijziging per veld" }
            thead { tr { th scope="col" { "Veld" } th scope="col" { "Nu" } th scope="col" { "Na de mutatie" } } }
            tbody {
                @for key in keys {
                    @let (b, a) = (before.get(key), after.get(key));
                    tr class=[(b != a).then_some("gewijzigd")] {
                        th scope="row" { (field_label(key)) }
                        td.voor { (b.map(String::as_str).unwrap_or("—")) }
                        td.na { (a.map(String::as_str).unwrap_or("—")) @if b != a { span.visually-hidden { " (gewijzigd)" } } }
                    }
                }
            }
        } }
    }
}
