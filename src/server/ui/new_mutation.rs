//! *Nieuwe mutatie*: a form per list that builds exactly the JSON submission the API takes
//! (field names are its paths, e.g. `entry.gegevensdiensten[0].token_endpoint`), so every
//! refusal the workflow reports lands next to its own field. The Zorgaanbieder form has
//! repeatable Gegevensdiensten and Systeemrollen, added by the server (no script needed);
//! "Controleer" validates like `POST /mutations/validate`, "Indienen" submits.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Viewer;
use super::csrf::check_form;
use super::layout::{error_page, page};
use super::words::{field_label, rule_label, rule_sentence};
use crate::domain::{ListKind, Violation};
use crate::mutations::{WorkflowError, parse_submission};
use crate::server::AppState;
use crate::server::audit::note;
use crate::server::error::ApiError;
use crate::server::query::list_name;

/// Bounds on a form: it cannot make the node build an unbounded document.
const MAX_FIELDS: usize = 2000;
const MAX_GROUPS: usize = 50;

/// Sets `value` at a path like `entry.gegevensdiensten[0].systeemrollen[1].code`.
fn set_path(root: &mut Value, path: &str, value: Value) -> Option<()> {
    let mut current = root;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(']')?.parse::<usize>().ok()?)),
            None => (part, None),
        };
        if name.is_empty() || index.is_some_and(|i| i >= MAX_GROUPS) {
            return None;
        }
        let object = current.as_object_mut()?;
        let slot = object.entry(name.to_owned()).or_insert(match index {
            Some(_) => Value::Array(Vec::new()),
            None => Value::Object(Map::new()),
        });
        current = match index {
            Some(i) => {
                let items = slot.as_array_mut()?;
                while items.len() <= i {
                    items.push(Value::Object(Map::new()));
                }
                items.get_mut(i)?
            }
            None => slot,
        };
    }
    *current = value;
    Some(())
}

/// Drops groups the user left empty (every text field blank).
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !prune(v));
            fields.is_empty()
        }
        Value::Array(items) => {
            items.retain_mut(|v| !prune(v));
            false
        }
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Sets a top-level field of a submission (always an object).
fn put(body: &mut Value, key: &str, value: Value) {
    if let Some(fields) = body.as_object_mut() {
        fields.insert(key.to_owned(), value);
    }
}

/// A top-level field of a submission, or null.
fn get<'a>(body: &'a Value, key: &str) -> &'a Value {
    body.get(key).unwrap_or(&Value::Null)
}

/// The form's fields as a submission.
fn submission(list: ListKind, fields: &[(String, String)]) -> Option<Value> {
    let mut body = json!({ "list": list.as_str(), "operation": "upsert", "entry": {} });
    for (name, value) in fields {
        let value = value.trim().to_owned();
        match name.as_str() {
            "csrf" | "actie" => {}
            "base_version" => put(
                &mut body,
                "base_version",
                json!(value.parse::<i64>().unwrap_or(0)),
            ),
            "urgent" => put(&mut body, "urgent", json!(true)),
            name if name == "on_behalf_of" || name == "reference" || name.starts_with("entry.") => {
                set_path(&mut body, name, Value::String(value))?;
            }
            _ => {}
        }
    }
    let mut entry = body.get_mut("entry").map(Value::take).unwrap_or_default();
    prune(&mut entry);
    put(
        &mut body,
        "entry",
        if entry.is_null() { json!({}) } else { entry },
    );
    Some(body)
}

/// An HTML id for a field path.
fn id_of(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

struct Form<'a> {
    list: ListKind,
    body: &'a Value,
    violations: &'a [Violation],
}

impl Form<'_> {
    fn value(&self, path: &str) -> String {
        let mut current = self.body;
        for part in path.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, rest)) => (
                    n,
                    rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()),
                ),
                None => (part, None),
            };
            current = match (current.get(name), index) {
                (Some(v), Some(i)) => v.get(i).unwrap_or(&Value::Null),
                (Some(v), None) => v,
                (None, _) => &Value::Null,
            };
        }
        current.as_str().map(str::to_owned).unwrap_or_default()
    }

    /// A labelled input with its refusals announced next to it.
    fn field(&self, path: &str, label: &str) -> Markup {
        let id = id_of(path);
        let errors: Vec<&Violation> = self
            .violations
            .iter()
            .filter(|v| v.path.strip_prefix("$.") == Some(path))
            .collect();
        let described = format!("{id}-fout");
        html! {
            div.veld {
                label for=(id) { (label) }
                input id=(id) name=(path) value=(self.value(path)) aria-invalid=[(!errors.is_empty()).then_some("true")]
                    aria-describedby=[(!errors.is_empty()).then_some(described.as_str())];
                @if !errors.is_empty() {
                    p.fout id=(described) role="alert" { @for v in &errors { (rule_sentence(v.rule)) " " } }
                }
            }
        }
    }

    fn groups(&self, path: &str) -> usize {
        self.body
            .pointer(&format!("/{}", path.replace('.', "/")))
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    fn entry_fields(&self) -> Markup {
        match self.list {
            ListKind::Zal => {
                let services = self.groups("entry.gegevensdiensten").max(1);
                html! {
                    (self.field("entry.naam", "Zorgaanbiedernaam"))
                    @for g in 0..services {
                        @let base = format!("entry.gegevensdiensten[{g}]");
                        fieldset {
                            legend { "Gegevensdienst " (g + 1) }
                            (self.field(&format!("{base}.id"), "GegevensdienstId"))
                            (self.field(&format!("{base}.authorization_endpoint"), "AuthorizationEndpointuri"))
                            (self.field(&format!("{base}.token_endpoint"), "TokenEndpointuri"))
                            @let roles = self.groups(&format!("{base}.systeemrollen")).max(1);
                            @for r in 0..roles {
                                fieldset {
                                    legend { "Systeemrol " (r + 1) }
                                    (self.field(&format!("{base}.systeemrollen[{r}].code"), "Systeemrolcode"))
                                    (self.field(&format!("{base}.systeemrollen[{r}].resource_endpoint"), "ResourceEndpointuri"))
                                }
                            }
                            button.secundair type="submit" name="actie" value=(format!("rol-toevoegen-{g}")) { "Systeemrol toevoegen" }
                        }
                    }
                    button.secundair type="submit" name="actie" value="gd-toevoegen" { "Gegevensdienst toevoegen" }
                }
            }
            ListKind::Whitelist => self.field("entry.hostname", "Hostname"),
            ListKind::Gnl => html! {
                (self.field("entry.id", "GegevensdienstId"))
                (self.field("entry.weergavenaam", "Weergavenaam"))
            },
            ListKind::Ocl => html! {
                (self.field("entry.hostname", "Hostname"))
                (self.field("entry.organisatienaam", "OAuthclientOrganisatienaam"))
                (self.field("entry.interfaceversie", "Interfaceversie"))
            },
        }
    }
}

fn form_page(
    viewer: &Viewer,
    list: ListKind,
    body: &Value,
    violations: &[Violation],
    checked: bool,
) -> HttpResponse {
    let form = Form {
        list,
        body,
        violations,
    };
    let general: Vec<&Violation> = violations
        .iter()
        .filter(|v| {
            !v.path.starts_with("$.entry.") && v.path != "$.on_behalf_of" && v.path != "$.reference"
        })
        .collect();
    let markup = html! {
        @if checked && violations.is_empty() { p.melding role="status" { "Geen bezwaren: de mutatie kan worden ingediend." } }
        @if !violations.is_empty() {
            p.fout role="alert" { (violations.len()) " bezwaar/bezwaren; zie de velden hieronder." }
            @for v in &general { p.fout { (field_label(v.path.trim_start_matches("$."))) ": " (rule_label(v.rule)) } }
        }
        form method="post" action=(format!("/ui/nieuw/{list}")) novalidate {
            // Enter in a field submits the form's first button: make that "Controleer", not
            // "Systeemrol toevoegen". Out of the tab order and hidden from screen readers,
            // which reach the visible one.
            button.visually-hidden type="submit" name="actie" value="controleer" tabindex="-1" aria-hidden="true" { "Controleer" }
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="base_version" value=(get(body, "base_version").as_i64().unwrap_or(0));
            (form.entry_fields())
            (form.field("on_behalf_of", "Namens deelnemer"))
            (form.field("reference", "Ticketreferentie"))
            div.veld {
                label for="urgent" { input id="urgent" type="checkbox" name="urgent" checked[get(body, "urgent") == &json!(true)]; " Urgent" }
            }
            div {
                button.secundair type="submit" name="actie" value="controleer" { "Controleer" }
                " "
                button type="submit" name="actie" value="indienen" { "Indienen" }
            }
        }
    };
    page(&format!("Nieuwe mutatie: {list}"), viewer, markup)
}

#[derive(Debug, Deserialize)]
pub struct Prefill {
    /// The key of the entry to change: the form starts from it, based on its version.
    entry: Option<String>,
}

pub async fn form_handler(
    state: web::Data<AppState>,
    viewer: Viewer,
    list: web::Path<String>,
    prefill: web::Query<Prefill>,
) -> HttpResponse {
    let list = match list_name(&list) {
        Ok(list) => list,
        Err(e) => return error_page(&viewer, e),
    };
    let mut body = json!({ "entry": {}, "base_version": 0 });
    if let Some(key) = prefill.entry.as_deref() {
        match state.services.workflow.entry(list, key).await {
            Ok(current) => {
                put(
                    &mut body,
                    "entry",
                    current.entry.unwrap_or_else(|| json!({})),
                );
                put(&mut body, "base_version", json!(current.version));
            }
            Err(e) => return error_page(&viewer, e.into()),
        }
    }
    form_page(&viewer, list, &body, &[], false)
}

pub async fn post_handler(
    request: HttpRequest,
    state: web::Data<AppState>,
    viewer: Viewer,
    list: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    match post(&request, &state, &viewer, &list, form.into_inner()).await {
        Ok(response) => response,
        Err(e) => {
            note(&request, |n| {
                n.reason.get_or_insert_with(|| e.to_string());
            });
            error_page(&viewer, e)
        }
    }
}

async fn post(
    request: &HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    list: &str,
    fields: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let list = list_name(list)?;
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    check_form(request, state, viewer, token)?;
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::BadRequest("the form has too many fields".into()));
    }
    let action = fields
        .iter()
        .find(|(k, _)| k == "actie")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut body = submission(list, &fields)
        .ok_or_else(|| ApiError::BadRequest("a field name is not understood".into()))?;
    // Adding a group: the form again, one group longer.
    let add = |body: &mut Value, path: &str| -> Result<(), ApiError> {
        let n = body
            .pointer(&format!("/{}", path.replace('.', "/")))
            .and_then(Value::as_array)
            .map_or(1, Vec::len)
            .max(1);
        set_path(body, &format!("{path}[{n}].id"), json!(""))
            .ok_or_else(|| ApiError::BadRequest("too many groups".into()))
    };
    if action == "gd-toevoegen" {
        add(&mut body, "entry.gegevensdiensten")?;
        return Ok(form_page(viewer, list, &body, &[], false));
    }
    if let Some(g) = action
        .strip_prefix("rol-toevoegen-")
        .and_then(|g| g.parse::<usize>().ok())
    {
        add(
            &mut body,
            &format!("entry.gegevensdiensten[{g}].systeemrollen"),
        )?;
        return Ok(form_page(viewer, list, &body, &[], false));
    }
    let violations =
        |violations: Vec<Violation>| Ok(form_page(viewer, list, &body, &violations, true));
    let submission = match parse_submission(&body) {
        Ok(s) => s,
        Err(refused) => return violations(refused.as_slice().to_vec()),
    };
    if action != "indienen" {
        return match state.services.workflow.validate(&submission).await {
            Ok(()) => violations(Vec::new()),
            Err(WorkflowError::Check(crate::domain::CheckError::Invalid(v))) => {
                violations(v.as_slice().to_vec())
            }
            Err(e) => Err(e.into()),
        };
    }
    note(request, |n| {
        n.object = Some(format!(
            "{}/{}",
            submission.change.list(),
            submission.change.key()
        ));
        n.on_behalf_of = Some(submission.on_behalf_of.to_string());
    });
    match state
        .services
        .workflow
        .submit(&viewer.actor, submission)
        .await
    {
        Ok(record) => {
            note(request, |n| n.recorded = true);
            Ok(HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/ui/mutaties/{}?melding=ingediend", record.id),
                ))
                .finish())
        }
        Err(WorkflowError::Check(crate::domain::CheckError::Invalid(v))) => {
            violations(v.as_slice().to_vec())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_the_api_submission() {
        let fields: Vec<(String, String)> = [
            ("csrf", "x"),
            ("entry.naam", "nieuwezorg@medmij"),
            ("entry.gegevensdiensten[0].id", "4"),
            ("entry.gegevensdiensten[0].systeemrollen[0].code", "LAB"),
            ("entry.gegevensdiensten[1].id", ""),
            ("on_behalf_of", "Ziekenhuis"),
            ("base_version", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let body = submission(ListKind::Zal, &fields).unwrap();
        assert_eq!(body["entry"]["naam"], "nieuwezorg@medmij");
        assert_eq!(
            body["entry"]["gegevensdiensten"].as_array().unwrap().len(),
            1,
            "the empty group is dropped"
        );
        assert_eq!(
            body["entry"]["gegevensdiensten"][0]["systeemrollen"][0]["code"],
            "LAB"
        );
        assert!(submission(ListKind::Zal, &[("entry.x[99]".into(), "y".into())]).is_none());
    }
}
