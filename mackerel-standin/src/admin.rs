//! Endpoints for tests and demos under `/_standin/`, a prefix Mackerel never
//! uses: faults, counters, a dump of everything stored, and reset.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::counters::Counters;
use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::snapshot::Snapshot;
use crate::state::{unix_now, Shared};
use crate::validation::has_json_content_type;

/// Routes under `/_standin`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_standin/health", get(health))
        .route("/_standin/faults", get(get_faults).put(put_faults))
        .route("/_standin/counters", get(counters))
        .route("/_standin/dump", get(dump))
        .route("/_standin/reset", post(reset))
}

async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<FaultConfig> {
    Json(shared.fault_config())
}

/// Replaces the fault settings; fields left out take their defaults (no fault).
async fn put_faults(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FaultConfig>, ApiError> {
    require_json_admin_write(&headers)?;
    let config: FaultConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("fault settings are not valid: {e}")))?;
    config
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    shared.set_faults(config);
    let now_in_force = shared.fault_config();
    tracing::info!(faults = ?now_in_force, "fault settings replaced");
    Ok(Json(now_in_force))
}

async fn counters(State(shared): State<Arc<Shared>>) -> Json<Counters> {
    Json(shared.counters().clone())
}

async fn dump(State(shared): State<Arc<Shared>>) -> Json<Snapshot> {
    Json(shared.snapshot(unix_now()))
}

async fn reset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_json_admin_write(&headers)?;
    shared.reset();
    tracing::info!("data and counters reset");
    Ok(Json(json!({"success": true})))
}

/// Refuses an admin write that a browser could send cross-site (a form post).
fn require_json_admin_write(headers: &HeaderMap) -> Result<(), ApiError> {
    if has_json_content_type(headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "admin writes need Content-Type: application/json (so that a web page cannot send them cross-site)",
        ))
    }
}
