//! Publication on demand (`POST /publications`, with the mass-change confirmation) and the
//! release clean-up of seed 001, on the admin listener.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::audit::note;
use super::error::ApiError;
use super::query::{bad_request, list_name};
use crate::domain::{
    Deelnemer, Interfaceversie, InvalidValue, ListKind, Ticketreferentie, Violations,
};
use crate::mutations::{Actor, RetireOutcome, RetireRequest};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationRequest {
    lists: Vec<String>,
    #[serde(default)]
    confirm_mass_change: bool,
}

impl PublicationRequest {
    fn lists(&self) -> Result<Vec<ListKind>, ApiError> {
        let lists = self
            .lists
            .iter()
            .map(|l| list_name(l))
            .collect::<Result<Vec<_>, _>>()?;
        match lists.is_empty() {
            true => Err(bad_request("name at least one list")),
            false => Ok(lists),
        }
    }
}

pub async fn publish(
    request: HttpRequest,
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<PublicationRequest>,
) -> Result<HttpResponse, ApiError> {
    let lists = body.lists()?;
    let object = lists
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(",");
    note(&request, |n| {
        n.object = Some(object);
        n.reason = body
            .confirm_mass_change
            .then(|| "mass change confirmed".into());
    });
    let published = state
        .services
        .workflow
        .publish(&actor, &lists, body.confirm_mass_change)
        .await?;
    let published: Map<String, Value> = published
        .into_iter()
        .map(|(list, volgnummer)| (list.as_str().into(), json!(volgnummer)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "published": published })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireBody {
    interfaceversie: String,
    reference: String,
    on_behalf_of: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

impl RetireBody {
    fn parse(self) -> Result<RetireRequest, ApiError> {
        fn at(path: &'static str) -> impl Fn(InvalidValue) -> ApiError {
            move |e| ApiError::refused(Violations::one(e.at(path)))
        }
        Ok(RetireRequest {
            interfaceversie: Interfaceversie::parse(self.interfaceversie)
                .map_err(at("$.interfaceversie"))?,
            reference: Ticketreferentie::parse(self.reference).map_err(at("$.reference"))?,
            on_behalf_of: Deelnemer::parse(
                self.on_behalf_of
                    .unwrap_or_else(|| "Stichting MedMij".into()),
            )
            .map_err(at("$.on_behalf_of"))?,
            dry_run: self.dry_run,
        })
    }
}

pub async fn retire_interface_version(
    request: HttpRequest,
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<RetireBody>,
) -> Result<HttpResponse, ApiError> {
    let retire = body.into_inner().parse()?;
    note(&request, |n| {
        n.object = Some(format!("interfaceversie/{}", retire.interfaceversie));
        n.on_behalf_of = Some(retire.on_behalf_of.to_string());
    });
    // Each submitted mutation has its own audit record; the request's own is written by the
    // audit middleware, so this handler never marks the request recorded.
    Ok(
        match state
            .services
            .workflow
            .retire_interface_version(&actor, retire)
            .await?
        {
            RetireOutcome::Planned(changes) => {
                let changes: Vec<Value> = changes
                    .iter()
                    .map(
                        |c| json!({ "list": c.list(), "key": c.key(), "operation": c.operation() }),
                    )
                    .collect();
                HttpResponse::Ok().json(json!({ "changes": changes }))
            }
            RetireOutcome::Submitted(mutations) => {
                HttpResponse::Created().json(json!({ "mutations": mutations }))
            }
        },
    )
}
