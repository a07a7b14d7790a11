//! Publication on demand (`POST /publications`, with the mass-change confirmation), the
//! publication that follows an approval, and the release clean-up of seed 001.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::audit::{Caller, note};
use super::error::ApiError;
use super::mutations_api::{bad_request, list_name, store_submission};
use crate::domain::{Interfaceversie, ListKind, Rule, Violation, Violations};
use crate::mutations::{Stage, Submission, check_change};
use crate::publication::{PublishError, PublishOptions};

/// What happened to the publication that follows an approval.
#[derive(Debug, Serialize)]
pub(super) struct PublicationOutcome {
    pub published: bool,
    volgnummer: Option<i64>,
    message: Option<String>,
    violations: Vec<Violation>,
}

/// Publishes `list` and serves the new version at once; a refusal or failure is reported,
/// not raised (the approval itself stands; the background task tries again).
pub(super) async fn publish_now(
    state: &AppState,
    list: ListKind,
    caller: &Caller,
    confirm_mass_change: bool,
) -> PublicationOutcome {
    let options = PublishOptions {
        confirm_mass_change,
        published_by: caller.identity.subject(),
    };
    let outcome = match state.publisher.publish(list, &options).await {
        Ok(version) => PublicationOutcome {
            published: true,
            volgnummer: Some(version.volgnummer.get()),
            message: None,
            violations: Vec::new(),
        },
        Err(PublishError::Refused { violations, .. }) => PublicationOutcome {
            published: false,
            volgnummer: None,
            message: Some(format!(
                "the {list} list was not published: it breaks the integrity rules"
            )),
            violations: violations.into_vec(),
        },
        Err(e) => PublicationOutcome {
            published: false,
            volgnummer: None,
            message: Some(format!(
                "the {list} list was not published ({e}); the node tries again"
            )),
            violations: Vec::new(),
        },
    };
    if outcome.published
        && let Err(e) = state
            .served
            .refresh(state.storage.as_ref(), &state.tls)
            .await
    {
        // The 2-second refresh loop serves it shortly; nothing is lost.
        tracing::error!(error = %e, %list, "cannot serve the new version yet");
    }
    outcome
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationRequest {
    lists: Vec<String>,
    #[serde(default)]
    confirm_mass_change: bool,
}

pub async fn publish(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<PublicationRequest>,
) -> Result<HttpResponse, ApiError> {
    let requested = body
        .lists
        .iter()
        .map(|l| list_name(l))
        .collect::<Result<Vec<_>, _>>()?;
    if requested.is_empty() {
        return Err(bad_request("name at least one list"));
    }
    note(&request, |n| {
        n.object = Some(
            requested
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        n.reason = body
            .confirm_mass_change
            .then(|| "mass change confirmed".into());
    });
    let mut published = serde_json::Map::new();
    for list in ListKind::PUBLICATION_ORDER
        .into_iter()
        .filter(|l| requested.contains(l))
    {
        let outcome = publish_now(&state, list, &caller, body.confirm_mass_change).await;
        if !outcome.published {
            let message = format!(
                "{}{}",
                outcome.message.unwrap_or_default(),
                match published.is_empty() {
                    true => String::new(),
                    false => format!(
                        "; published before: {}",
                        published.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                }
            );
            return Err(match outcome.violations.is_empty() {
                true => ApiError::Unavailable(message),
                false => ApiError::Unprocessable {
                    message,
                    violations: outcome.violations,
                },
            });
        }
        published.insert(list.as_str().into(), json!(outcome.volgnummer));
    }
    Ok(HttpResponse::Ok().json(json!({ "published": published })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireRequest {
    interfaceversie: String,
    reference: String,
    on_behalf_of: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

pub async fn retire_interface_version(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<RetireRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let field =
        |path: &str, e: crate::domain::InvalidValue| ApiError::refused(Violations::one(e.at(path)));
    let version =
        Interfaceversie::parse(body.interfaceversie).map_err(|e| field("$.interfaceversie", e))?;
    let reference = crate::domain::Ticketreferentie::parse(body.reference)
        .map_err(|e| field("$.reference", e))?;
    let on_behalf_of = crate::domain::Deelnemer::parse(
        body.on_behalf_of
            .unwrap_or_else(|| "Stichting MedMij".into()),
    )
    .map_err(|e| field("$.on_behalf_of", e))?;
    note(&request, |n| {
        n.object = Some(format!("interfaceversie/{version}"));
        n.on_behalf_of = Some(on_behalf_of.to_string());
    });
    let current = state.state_cache.current().await?;
    let plan = crate::mutations::retire_interface_version(&version, &current);
    let mut refusals = Vec::new();
    for change in &plan.changes {
        if let Err(e) = check_change(change, &current, Stage::Submission) {
            refusals.push(Violation::new(
                format!("{}/{}", change.list(), change.key()),
                Rule::Reference,
                e.to_string(),
            ));
        }
    }
    if let Some(violations) = Violations::from_vec(refusals) {
        return Err(ApiError::refused(violations));
    }
    let summary: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| json!({ "list": c.list(), "key": c.key(), "operation": c.operation() }))
        .collect();
    if body.dry_run {
        return Ok(HttpResponse::Ok().json(json!({ "changes": summary })));
    }
    let mut submitted = Vec::new();
    for change in plan.changes {
        let submission = Submission {
            change,
            on_behalf_of: on_behalf_of.clone(),
            reference: reference.clone(),
            urgent: false,
            agreed_deadline: None,
            effective_from: None,
        };
        submitted.push(store_submission(&state, &request, &caller, submission).await?);
    }
    // One record per mutation above, and this one for the request.
    note(&request, |n| n.recorded = false);
    Ok(HttpResponse::Created().json(json!({ "mutations": submitted })))
}
