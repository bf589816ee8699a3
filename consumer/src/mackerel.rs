//! The HTTP side of posting to Mackerel: one tsdb request with a timeout, its
//! answer reduced to what the retry logic needs. The key travels only in a
//! header marked sensitive, so it never shows in logs or errors.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};

use crate::api_key::ApiKey;
use crate::delivery::Transport;
use crate::retry::{parse_retry_after, AttemptResult};

/// Posts service metrics to a Mackerel API base URL.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    api_base: String,
}

impl HttpTransport {
    /// `api_base` without a trailing slash, e.g. `https://api.mackerelio.com`.
    pub fn new(api_base: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("sfn-mackerel-consumer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn tsdb_url(&self, service: &str) -> String {
        format!("{}/api/v0/services/{service}/tsdb", self.api_base)
    }
}

impl Transport for HttpTransport {
    async fn post_tsdb(
        &self,
        service: &str,
        body: &[u8],
        key: &ApiKey,
        timeout: Duration,
    ) -> AttemptResult {
        let Ok(mut key_header) = HeaderValue::from_str(key.expose()) else {
            return AttemptResult::Answered {
                status: 401,
                retry_after: None,
                message: "the API key contains characters that cannot be sent in a header".into(),
            };
        };
        key_header.set_sensitive(true);
        let sent = self
            .client
            .post(self.tsdb_url(service))
            .header("X-Api-Key", key_header)
            .header(CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let message = if response.status().is_success() {
            String::new()
        } else {
            match response.text().await {
                Ok(text) => error_message(&text),
                Err(error) if error.is_timeout() => return AttemptResult::TimedOut,
                Err(_) => String::new(),
            }
        };
        AttemptResult::Answered {
            status,
            retry_after,
            message,
        }
    }
}

fn transport_failure(error: &reqwest::Error) -> AttemptResult {
    if error.is_timeout() {
        return AttemptResult::TimedOut;
    }
    // The error's source chain says why (refused, reset, DNS); the URL holds no secret.
    let mut why = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    AttemptResult::Unreachable(why)
}

/// Mackerel's `{"error": {"message": "..."}}`, or the start of whatever came back.
pub fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: ErrorDetail,
    }
    #[derive(serde::Deserialize)]
    struct ErrorDetail {
        message: String,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) => parsed.error.message,
        Err(_) => body.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mackerel_error_bodies_yield_their_message() {
        assert_eq!(
            error_message(r#"{"error": {"message": "Service not found"}}"#),
            "Service not found"
        );
    }

    #[test]
    fn other_bodies_are_cut_short() {
        assert_eq!(error_message(&"x".repeat(1000)).len(), 200);
    }
}
