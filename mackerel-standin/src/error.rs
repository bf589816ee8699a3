//! Errors: the Mackerel-shaped `{"error": {"message": ...}}` answers, and the
//! stand-in's own failures to start or stop.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::Forbidden;
use crate::store::NotFound;
use crate::validation::Invalid;

/// An error answer in Mackerel's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Text of `error.message`.
    pub message: String,
    /// `Retry-After` seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503 for requests cut short by shutdown.
    pub fn shutting_down() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stand-in is shutting down",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"message": self.message}})),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, e.to_string())
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad_request(e.0)
    }
}

impl From<NotFound> for ApiError {
    fn from(e: NotFound) -> Self {
        ApiError::not_found(e.to_string())
    }
}

/// Why the stand-in could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// Address requested.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The state file exists but cannot be used.
    #[error("cannot load state file {path}: {reason} (fix or delete the file)")]
    StateFile {
        /// File path.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
}

/// Why shutdown was not clean.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The server task failed.
    #[error("the HTTP server failed: {0}")]
    Server(String),
    /// The final save failed.
    #[error("cannot save state file {path}: {source}")]
    StateFile {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}
