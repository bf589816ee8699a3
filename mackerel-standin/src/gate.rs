//! The layer every request passes first: counts it, logs one line for it, and
//! applies injected faults and limits before Mackerel's own rules run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::counters::RequestKind;
use crate::error::ApiError;
use crate::faults::{FaultConfig, FaultDecision};
use crate::state::Shared;

/// Header carrying the organisation's API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Counts, logs and (for faulted endpoints) applies faults to one request.
pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let kind = RequestKind::classify(request.method(), request.uri().path());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    shared.counters().record_request(kind);
    let faults = shared.fault_config();
    let faulted = kind == RequestKind::TsdbPost || (kind.is_api() && faults.fault_read_api);
    let response = if faulted {
        apply_faults(&shared, &faults, request, next).await
    } else {
        next.run(request).await
    };
    let status = response.status().as_u16();
    shared.counters().record_status(kind, status);
    // The path holds only the service name; the API key is never logged.
    tracing::info!(
        method = %method,
        path = %path,
        status,
        kind = kind.as_str(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// An answer whose body fails at once: the server closes the connection
/// without a complete answer, so the client cannot tell what happened.
fn cut_off() -> Response {
    let failing = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other(
            "injected: connection cut before the answer",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "16")
        .body(Body::from_stream(failing))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Order: latency, hang, injected 500/503/429, a redirect (302), a proxy's 200
/// page, body size (413), per-key rate limit (429); then the handler applies
/// auth (403), service (404) and body (400), and a drop-after-store fault cuts
/// the connection after the handler stored the values.
async fn apply_faults(
    shared: &Shared,
    faults: &FaultConfig,
    request: Request,
    next: Next,
) -> Response {
    if faults.latency_ms > 0 && !shared.sleep_unless_shutdown(faults.latency()).await {
        return ApiError::shutting_down().into_response();
    }
    let mut cut_off_after = false;
    match shared.draw_fault(faults) {
        FaultDecision::Pass => {}
        FaultDecision::Hang => {
            shared.counters().requests_hung += 1;
            tracing::info!(
                path = %request.uri().path(),
                hold_seconds = faults.hang_max_seconds,
                "holding request without an answer (hang fault)"
            );
            if !shared
                .sleep_unless_shutdown(Duration::from_secs(faults.hang_max_seconds))
                .await
            {
                return ApiError::shutting_down().into_response();
            }
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "injected hang: no answer was given in time",
            )
            .into_response();
        }
        FaultDecision::InternalServerError => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected internal server error",
            )
            .into_response()
        }
        FaultDecision::ServiceUnavailable => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "injected service unavailable",
            )
            .into_response()
        }
        FaultDecision::TooManyRequests { retry_after } => {
            let mut error =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "injected too many requests");
            error.retry_after = retry_after;
            return error.into_response();
        }
        FaultDecision::Redirect => {
            return (
                StatusCode::FOUND,
                [(header::LOCATION, faults.redirect_location.clone())],
            )
                .into_response()
        }
        FaultDecision::NotMackerelAnswer => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>injected: a proxy's page, not Mackerel's answer</body></html>",
            )
                .into_response()
        }
        FaultDecision::DropAfterStore => cut_off_after = true,
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {} bytes: split the values into smaller requests",
                faults.max_body_bytes
            ),
        )
        .into_response()
    };
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > faults.max_body_bytes as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, faults.max_body_bytes).await else {
        return too_large();
    };
    if let Some(limit) = faults.requests_per_minute_per_key {
        let key = parts
            .headers
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|k| shared.keys.is_known(k));
        if let Some(key) = key {
            let admitted = shared
                .faults()
                .limiter
                .admit(key, limit, tokio::time::Instant::now());
            if !admitted {
                return ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("rate limit exceeded: at most {limit} requests per minute per API key"),
                )
                .into_response();
            }
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if cut_off_after {
        tracing::info!(
            status = response.status().as_u16(),
            "request handled; cutting the connection before the answer (drop-after-store fault)"
        );
        return cut_off();
    }
    response
}
