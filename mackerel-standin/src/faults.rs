//! Injected failures and limits for reliability tests: which faulty answer a
//! request gets, decided from seedable random draws, and a per-key rate limit.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Default cap on request bodies (a guess: the official fluentd plugin sends
/// 100 KB chunks, so Mackerel accepts at least that).
pub const DEFAULT_MAX_BODY_BYTES: usize = 100 * 1024;
/// Where injected redirects point by default: a loopback port nothing listens on.
pub const DEFAULT_REDIRECT_LOCATION: &str = "http://127.0.0.1:9/api/v0/elsewhere";
/// Largest `max_body_bytes` the stand-in accepts.
pub const MAX_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// Fault settings, readable and replaceable at run time (`/_standin/faults`).
/// Fields left out of a PUT take these defaults (no faults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Share of faulted requests answered 500.
    pub error_500_fraction: f64,
    /// Share of faulted requests answered 503.
    pub error_503_fraction: f64,
    /// Share of faulted requests answered 429.
    pub too_many_requests_fraction: f64,
    /// Share of those injected 429s that carry `Retry-After`.
    pub retry_after_fraction: f64,
    /// `Retry-After` value in seconds.
    pub retry_after_seconds: u64,
    /// Delay added before answering every faulted request.
    pub latency_ms: u64,
    /// Share of faulted requests held without an answer.
    pub hang_fraction: f64,
    /// Share of faulted requests answered `302` to `redirect_location`, as a
    /// misconfigured proxy or base URL would (nothing is stored).
    pub redirect_fraction: f64,
    /// Where injected redirects point.
    pub redirect_location: String,
    /// Share of faulted requests answered `200` with an HTML page instead of
    /// Mackerel's `{"success": true}`, as a proxy might (nothing is stored).
    pub not_mackerel_answer_fraction: f64,
    /// Share of faulted requests that are stored, then have their connection cut
    /// before any answer: the client cannot know the values were kept.
    pub drop_after_store_fraction: f64,
    /// How long a held request is kept before it is answered 504.
    pub hang_max_seconds: u64,
    /// Requests per sliding minute per API key; beyond it, 429 without `Retry-After`.
    pub requests_per_minute_per_key: Option<u32>,
    /// Bodies larger than this are answered 413.
    pub max_body_bytes: usize,
    /// Also fault the read API, service creation and monitors (normally only
    /// `POST .../tsdb` is faulted, so verification tools can read reliably).
    pub fault_read_api: bool,
    /// Seed of the fault randomness; setting it restarts the random sequence.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            error_500_fraction: 0.0,
            error_503_fraction: 0.0,
            too_many_requests_fraction: 0.0,
            retry_after_fraction: 0.0,
            retry_after_seconds: 1,
            latency_ms: 0,
            hang_fraction: 0.0,
            redirect_fraction: 0.0,
            redirect_location: DEFAULT_REDIRECT_LOCATION.to_owned(),
            not_mackerel_answer_fraction: 0.0,
            drop_after_store_fraction: 0.0,
            hang_max_seconds: 120,
            requests_per_minute_per_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            fault_read_api: false,
            seed: None,
        }
    }
}

/// A fault configuration that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid fault configuration: {0}")]
pub struct InvalidFaults(pub String);

impl FaultConfig {
    /// Checks fractions, limits and bounds.
    pub fn validate(&self) -> Result<(), InvalidFaults> {
        let fractions = [
            ("error_500_fraction", self.error_500_fraction),
            ("error_503_fraction", self.error_503_fraction),
            (
                "too_many_requests_fraction",
                self.too_many_requests_fraction,
            ),
            ("retry_after_fraction", self.retry_after_fraction),
            ("hang_fraction", self.hang_fraction),
            ("redirect_fraction", self.redirect_fraction),
            (
                "not_mackerel_answer_fraction",
                self.not_mackerel_answer_fraction,
            ),
            ("drop_after_store_fraction", self.drop_after_store_fraction),
        ];
        if let Some((name, value)) = fractions
            .iter()
            .find(|(_, v)| !(v.is_finite() && (0.0..=1.0).contains(v)))
        {
            return Err(InvalidFaults(format!(
                "{name} must be between 0 and 1, got {value}"
            )));
        }
        let total = self.error_500_fraction
            + self.error_503_fraction
            + self.too_many_requests_fraction
            + self.hang_fraction
            + self.redirect_fraction
            + self.not_mackerel_answer_fraction
            + self.drop_after_store_fraction;
        if total > 1.0 + 1e-9 {
            return Err(InvalidFaults(format!(
                "the fractions of hang, 500, 503, 429, redirect, non-Mackerel answers and drops after store must not exceed 1 together, got {total}"
            )));
        }
        if axum::http::HeaderValue::from_str(&self.redirect_location).is_err() {
            return Err(InvalidFaults(
                "redirect_location must be a URL that fits an HTTP header".into(),
            ));
        }
        if self.requests_per_minute_per_key == Some(0) {
            return Err(InvalidFaults(
                "requests_per_minute_per_key must be at least 1 (leave it null for no limit)"
                    .into(),
            ));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(InvalidFaults(format!(
                "max_body_bytes must be between 1 and {MAX_BODY_BYTES_LIMIT}"
            )));
        }
        if self.hang_max_seconds > 3600 {
            return Err(InvalidFaults(
                "hang_max_seconds must be at most 3600".into(),
            ));
        }
        if self.latency_ms > 600_000 {
            return Err(InvalidFaults("latency_ms must be at most 600000".into()));
        }
        Ok(())
    }

    /// The added latency.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}

/// What a faulted request gets before Mackerel's own rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDecision {
    /// No injected failure.
    Pass,
    /// Held without an answer.
    Hang,
    /// Answered 500.
    InternalServerError,
    /// Answered 503.
    ServiceUnavailable,
    /// Answered 429, with `Retry-After` seconds when set.
    TooManyRequests {
        /// `Retry-After` header value.
        retry_after: Option<u64>,
    },
    /// Answered 302 to `redirect_location`.
    Redirect,
    /// Answered 200 with a page that is not Mackerel's answer.
    NotMackerelAnswer,
    /// Handled (stored), then the connection is cut before the answer.
    DropAfterStore,
}

/// Maps a uniform draw in `[0, 1)` onto consecutive bands: hang, 500, 503, 429,
/// redirect, non-Mackerel answer, drop after store. A second draw decides
/// whether a 429 carries `Retry-After`.
pub fn decide(config: &FaultConfig, draw: f64, retry_after_draw: f64) -> FaultDecision {
    let mut upper = config.hang_fraction;
    if draw < upper {
        return FaultDecision::Hang;
    }
    upper += config.error_500_fraction;
    if draw < upper {
        return FaultDecision::InternalServerError;
    }
    upper += config.error_503_fraction;
    if draw < upper {
        return FaultDecision::ServiceUnavailable;
    }
    upper += config.too_many_requests_fraction;
    if draw < upper {
        let retry_after =
            (retry_after_draw < config.retry_after_fraction).then_some(config.retry_after_seconds);
        return FaultDecision::TooManyRequests { retry_after };
    }
    for (fraction, decision) in [
        (config.redirect_fraction, FaultDecision::Redirect),
        (
            config.not_mackerel_answer_fraction,
            FaultDecision::NotMackerelAnswer,
        ),
        (
            config.drop_after_store_fraction,
            FaultDecision::DropAfterStore,
        ),
    ] {
        upper += fraction;
        if draw < upper {
            return decision;
        }
    }
    FaultDecision::Pass
}

/// Sliding one-minute window of admitted requests per API key.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Admits the request if fewer than `limit` requests of this key were
    /// admitted in the last 60 seconds. Refused requests do not count.
    pub fn admit(&mut self, key: &str, limit: u32, now: Instant) -> bool {
        let window = self.windows.entry(key.to_owned()).or_default();
        let minute = Duration::from_secs(60);
        while window
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= minute)
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return false;
        }
        window.push_back(now);
        true
    }

    /// Forgets every window.
    pub fn clear(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FaultConfig {
        FaultConfig {
            hang_fraction: 0.1,
            error_500_fraction: 0.2,
            error_503_fraction: 0.3,
            too_many_requests_fraction: 0.2,
            retry_after_fraction: 0.5,
            retry_after_seconds: 7,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn no_faults_are_configured_by_default() {
        let config = FaultConfig::default();
        assert_eq!(decide(&config, 0.0, 0.0), FaultDecision::Pass);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn draws_fall_into_consecutive_bands() {
        let config = config();
        assert_eq!(decide(&config, 0.05, 0.9), FaultDecision::Hang);
        assert_eq!(
            decide(&config, 0.15, 0.9),
            FaultDecision::InternalServerError
        );
        assert_eq!(
            decide(&config, 0.45, 0.9),
            FaultDecision::ServiceUnavailable
        );
        assert_eq!(
            decide(&config, 0.65, 0.9),
            FaultDecision::TooManyRequests { retry_after: None }
        );
        assert_eq!(
            decide(&config, 0.65, 0.1),
            FaultDecision::TooManyRequests {
                retry_after: Some(7)
            }
        );
        assert_eq!(decide(&config, 0.85, 0.1), FaultDecision::Pass);
    }

    #[test]
    fn the_answers_a_proxy_might_give_have_bands_of_their_own() {
        let config = FaultConfig {
            redirect_fraction: 0.1,
            not_mackerel_answer_fraction: 0.1,
            drop_after_store_fraction: 0.1,
            ..FaultConfig::default()
        };
        assert_eq!(decide(&config, 0.05, 0.0), FaultDecision::Redirect);
        assert_eq!(decide(&config, 0.15, 0.0), FaultDecision::NotMackerelAnswer);
        assert_eq!(decide(&config, 0.25, 0.0), FaultDecision::DropAfterStore);
        assert_eq!(decide(&config, 0.35, 0.0), FaultDecision::Pass);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn fractions_summing_above_one_are_refused() {
        let config = FaultConfig {
            error_500_fraction: 0.6,
            error_503_fraction: 0.6,
            ..FaultConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_fraction_outside_zero_to_one_is_refused() {
        let config = FaultConfig {
            retry_after_fraction: 1.5,
            ..FaultConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_zero_rate_limit_is_refused() {
        let config = FaultConfig {
            requests_per_minute_per_key: Some(0),
            ..FaultConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn the_rate_limit_admits_up_to_the_limit_per_minute_per_key() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        assert!(limiter.admit("k1", 2, start));
        assert!(limiter.admit("k1", 2, start));
        assert!(!limiter.admit("k1", 2, start));
        assert!(limiter.admit("k2", 2, start), "keys have separate windows");
        assert!(!limiter.admit("k1", 2, start + Duration::from_secs(59)));
        assert!(limiter.admit("k1", 2, start + Duration::from_secs(60)));
    }
}
