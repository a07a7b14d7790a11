//! The SLA on the admin listener: the report of a period (beheer) and a mutation's
//! notifications of an expected breach with their deliveries (staff).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use serde::Deserialize;

use super::AppState;
use super::audit::note;
use super::error::ApiError;
use super::query::bad_request;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    from: String,
    to: String,
    format: Option<String>,
}

fn date(text: &str, name: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| bad_request(format!("{name} must be a date, YYYY-MM-DD")))
}

pub async fn report(
    state: web::Data<AppState>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = (date(&query.from, "from")?, date(&query.to, "to")?);
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(bad_request("format must be json or csv")),
    };
    let report = state.services.sla.report(from, to).await?;
    Ok(match csv {
        true => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(report.to_csv()),
        false => HttpResponse::Ok().json(report),
    })
}

pub async fn notifications(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    note(&request, |n| n.object = Some(format!("mutations/{id}")));
    // 404 for a mutation that does not exist, rather than an empty list.
    state.services.workflow.mutation(*id).await?;
    Ok(HttpResponse::Ok().json(state.services.sla.notifications(*id).await?))
}
