//! The emulated Mackerel endpoints: services, service metrics, monitors and
//! alerts, with Mackerel's paths, headers, bodies and status codes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::gate::API_KEY_HEADER;
use crate::monitors::Alert;
use crate::state::{unix_now, Data, Shared};
use crate::validation::{
    has_json_content_type, parse_monitor_definition, parse_service_definition, parse_tsdb_body,
};

/// Most alerts one `GET /api/v0/alerts` returns (Mackerel's documented maximum).
const MAX_ALERTS_PER_PAGE: usize = 100;

type ApiResult = Result<Json<Value>, ApiError>;

/// Routes under `/api/v0`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v0/services", get(list_services).post(create_service))
        .route("/api/v0/services/{service}/tsdb", post(post_tsdb))
        .route("/api/v0/services/{service}/metric-names", get(metric_names))
        .route("/api/v0/services/{service}/metrics", get(read_metrics))
        .route("/api/v0/monitors", get(list_monitors).post(create_monitor))
        .route(
            "/api/v0/monitors/{id}",
            get(get_monitor).delete(delete_monitor),
        )
        .route("/api/v0/alerts", get(list_alerts))
}

/// Answer for `/api/...` paths Mackerel has but this stand-in does not emulate.
pub(crate) async fn not_emulated() -> ApiError {
    ApiError::not_found("this API endpoint is not emulated by the Mackerel stand-in")
}

fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok())
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if has_json_content_type(headers) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Content-Type must be application/json",
        ))
    }
}

async fn post_tsdb(
    State(shared): State<Arc<Shared>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    shared.keys.authorize_write(api_key(&headers))?;
    if shared.data().store.service(&service).is_none() {
        return Err(ApiError::not_found(format!(
            "service {service:?} not found: create it first (POST /api/v0/services or --service)"
        )));
    }
    require_json(&headers)?;
    let values = parse_tsdb_body(&body)?;
    let now = unix_now();
    let outcome = {
        let mut data = shared.data();
        let Data { store, monitoring } = &mut *data;
        let outcome = store.write(&service, &values, now)?;
        monitoring.on_write(store, &service, &outcome.touched, now);
        outcome
    };
    {
        let mut counters = shared.counters();
        counters.values_received += values.len() as u64;
        counters.values_accepted += outcome.accepted as u64;
        counters.values_dropped_too_old += outcome.dropped_too_old as u64;
        counters.values_dropped_too_far_in_future += outcome.dropped_too_far_in_future as u64;
        counters.values_overwritten += outcome.overwritten as u64;
    }
    if outcome.dropped_too_old + outcome.dropped_too_far_in_future > 0 {
        tracing::info!(
            service = %service,
            dropped_too_old = outcome.dropped_too_old,
            dropped_too_far_in_future = outcome.dropped_too_far_in_future,
            "values outside now ± 24 h were answered 200 and dropped, as Mackerel does"
        );
    }
    if outcome.accepted > 0 {
        shared.mark_changed();
    }
    Ok(Json(json!({"success": true})))
}

fn service_json(name: &str, memo: &str, roles: &[String]) -> Value {
    json!({"name": name, "memo": memo, "roles": roles})
}

async fn list_services(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    shared.keys.authorize_read(api_key(&headers))?;
    let data = shared.data();
    let services: Vec<Value> = data
        .store
        .services()
        .map(|s| service_json(&s.name, &s.memo, &s.roles))
        .collect();
    Ok(Json(json!({"services": services})))
}

async fn create_service(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    shared.keys.authorize_write(api_key(&headers))?;
    require_json(&headers)?;
    let definition = parse_service_definition(&body)?;
    let created = {
        let mut data = shared.data();
        let service = data
            .store
            .create_service(&definition.name, &definition.memo)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        service_json(&service.name, &service.memo, &service.roles)
    };
    shared.mark_changed();
    Ok(Json(created))
}

async fn metric_names(
    State(shared): State<Arc<Shared>>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    shared.keys.authorize_read(api_key(&headers))?;
    let names = shared.data().store.metric_names(&service)?;
    Ok(Json(json!({"names": names})))
}

fn epoch_param(params: &HashMap<String, String>, key: &str) -> Result<i64, ApiError> {
    let raw = params.get(key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "query parameter {key:?} is required (epoch seconds)"
        ))
    })?;
    raw.parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!(
            "query parameter {key:?} must be an integer epoch in seconds"
        ))
    })
}

async fn read_metrics(
    State(shared): State<Arc<Shared>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    shared.keys.authorize_read(api_key(&headers))?;
    let name = params
        .get("name")
        .ok_or_else(|| ApiError::bad_request("query parameter \"name\" is required"))?;
    let from = epoch_param(&params, "from")?;
    let to = epoch_param(&params, "to")?;
    if from > to {
        return Err(ApiError::bad_request("\"from\" must not be after \"to\""));
    }
    let points = shared.data().store.read(&service, name, from, to)?;
    Ok(Json(json!({"metrics": points})))
}

async fn list_monitors(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    shared.keys.authorize_read(api_key(&headers))?;
    let data = shared.data();
    Ok(Json(json!({"monitors": data.monitoring.monitors()})))
}

async fn create_monitor(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    shared.keys.authorize_write(api_key(&headers))?;
    require_json(&headers)?;
    let definition = parse_monitor_definition(&body)?;
    let monitor = {
        let mut data = shared.data();
        if data.store.service(&definition.service).is_none() {
            return Err(ApiError::bad_request(format!(
                "service {:?} not found: create the service before its monitors",
                definition.service
            )));
        }
        data.monitoring.add(definition, unix_now())
    };
    shared.mark_changed();
    Ok(Json(json!(monitor)))
}

async fn get_monitor(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    shared.keys.authorize_read(api_key(&headers))?;
    let data = shared.data();
    let monitor = data
        .monitoring
        .monitor(&id)
        .ok_or_else(|| ApiError::not_found(format!("monitor {id:?} not found")))?;
    Ok(Json(json!({"monitor": monitor})))
}

async fn delete_monitor(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    shared.keys.authorize_write(api_key(&headers))?;
    let deleted = shared
        .data()
        .monitoring
        .delete(&id, unix_now())
        .ok_or_else(|| ApiError::not_found(format!("monitor {id:?} not found")))?;
    shared.mark_changed();
    Ok(Json(json!(deleted)))
}

/// Selects one page of alerts, newest first.
pub(crate) fn page_of_alerts<'a>(
    alerts: &'a [Alert],
    with_closed: bool,
    limit: usize,
    next_id: Option<&str>,
) -> (Vec<&'a Alert>, Option<&'a str>) {
    let mut candidates = alerts.iter().rev().filter(|a| with_closed || a.is_open());
    if let Some(next_id) = next_id {
        // Skip up to and including the alert the previous page ended with.
        for alert in candidates.by_ref() {
            if alert.id == next_id {
                break;
            }
        }
    }
    let page: Vec<&Alert> = candidates.by_ref().take(limit).collect();
    let more = candidates.next().is_some();
    let next = if more {
        page.last().map(|a| a.id.as_str())
    } else {
        None
    };
    (page, next)
}

async fn list_alerts(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    shared.keys.authorize_read(api_key(&headers))?;
    let with_closed = match params.get("withClosed").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "\"withClosed\" must be true or false",
            ))
        }
    };
    let limit = match params.get("limit") {
        None => MAX_ALERTS_PER_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_ALERTS_PER_PAGE).contains(&n) => n,
            _ => return Err(ApiError::bad_request("\"limit\" must be between 1 and 100")),
        },
    };
    shared.check_missing(unix_now());
    let data = shared.data();
    let (alerts, next_id) = page_of_alerts(
        data.monitoring.alerts(),
        with_closed,
        limit,
        params.get("nextId").map(String::as_str),
    );
    let mut body = json!({"alerts": alerts});
    if let Some(next_id) = next_id {
        body["nextId"] = json!(next_id);
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitors::Status;

    fn alert(id: &str, open: bool) -> Alert {
        Alert {
            id: id.to_owned(),
            status: if open { Status::Critical } else { Status::Ok },
            monitor_id: "m".to_owned(),
            kind: "service".to_owned(),
            value: Some(1.0),
            message: String::new(),
            opened_at: 0,
            closed_at: if open { None } else { Some(1) },
        }
    }

    fn ids(page: &[&Alert]) -> Vec<String> {
        page.iter().map(|a| a.id.clone()).collect()
    }

    #[test]
    fn alerts_are_listed_newest_first_and_closed_ones_only_on_request() {
        let alerts = [alert("a1", false), alert("a2", true), alert("a3", true)];
        let (open, next) = page_of_alerts(&alerts, false, 100, None);
        assert_eq!(ids(&open), ["a3", "a2"]);
        assert_eq!(next, None);
        let (all, _) = page_of_alerts(&alerts, true, 100, None);
        assert_eq!(ids(&all), ["a3", "a2", "a1"]);
    }

    #[test]
    fn a_limited_page_gives_the_next_id_to_continue_from() {
        let alerts = [alert("a1", true), alert("a2", true), alert("a3", true)];
        let (first, next) = page_of_alerts(&alerts, false, 2, None);
        assert_eq!(ids(&first), ["a3", "a2"]);
        assert_eq!(next, Some("a2"));
        let (second, next) = page_of_alerts(&alerts, false, 2, Some("a2"));
        assert_eq!(ids(&second), ["a1"]);
        assert_eq!(next, None);
    }
}
