//! Getting one tsdb request body accepted by Mackerel: tries, waits and key
//! refreshes, all bounded by a try budget and by the invocation's deadline, so
//! the function answers SQS before Lambda would time it out.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use sfn_mackerel_message::SetAsideReason;
use tokio::time::Instant;

use crate::alerting::StatusPoint;
use crate::api_key::{ApiKey, KeyStore};
use crate::retry::{backoff, classify, AttemptResult, Verdict};

/// Mackerel's API as the consumer uses it: one tsdb post, one series read (the
/// HTTP client, or a scripted fake in tests).
pub trait Transport: Send + Sync {
    fn post_tsdb(
        &self,
        service: &str,
        body: &[u8],
        key: &ApiKey,
        timeout: Duration,
    ) -> impl Future<Output = AttemptResult> + Send;

    /// The points a service's series holds from `from` to `to` (epoch seconds),
    /// oldest first; empty when the series does not exist yet. An error says
    /// why the read failed, for a log line.
    fn read_series(
        &self,
        service: &str,
        name: &str,
        range: SeriesRange,
        key: &ApiKey,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<StatusPoint>, String>> + Send;
}

/// The span of a series read, epoch seconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesRange {
    pub from: i64,
    pub to: i64,
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub request_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// No try starts, and no wait ends, after this instant.
    pub give_up_at: Instant,
    /// A random number in `[0, 1)` for the jitter (fixed in tests).
    pub jitter: fn() -> f64,
}

/// How a request body ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkOutcome {
    Delivered,
    /// Mackerel refused it for good: the messages go to the DLQ with this reason.
    Permanent {
        reason: SetAsideReason,
        detail: String,
    },
    /// Mackerel refused the values themselves (400, 413, 422): a request without
    /// the refused ones can succeed, so the caller splits the request; messages
    /// whose values cannot be split further go to the DLQ as `mackerel_rejected`.
    RefusedContent {
        detail: String,
    },
    /// Still failing when tries or time ran out: the messages go back to the queue.
    GaveUp {
        detail: String,
    },
}

impl ChunkOutcome {
    /// Whether the refusal holds for every request of the service, so the rest
    /// is not even tried: an unknown service, a refused key, a redirect.
    pub fn holds_for_the_service(&self) -> bool {
        matches!(
            self,
            ChunkOutcome::Permanent {
                reason: SetAsideReason::UnknownService
                    | SetAsideReason::MackerelForbidden
                    | SetAsideReason::MackerelRedirected,
                ..
            }
        )
    }

    /// The reason its messages go to the DLQ with, if they do.
    pub fn parking_reason(&self) -> Option<(SetAsideReason, &str)> {
        match self {
            ChunkOutcome::Permanent { reason, detail } => Some((*reason, detail)),
            ChunkOutcome::RefusedContent { detail } => {
                Some((SetAsideReason::MackerelRejected, detail))
            }
            ChunkOutcome::Delivered | ChunkOutcome::GaveUp { .. } => None,
        }
    }
}

/// What the tries cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TryCount {
    pub requests: u32,
    pub retries: u32,
}

/// The smallest slice of time worth starting a request in.
pub const MIN_REQUEST_TIME: Duration = Duration::from_millis(200);

/// Posts `body` for `service` until it is accepted, refused for good, or the
/// policy's tries or time run out. `generation` identifies the invocation, so the
/// key is fetched again at most once per invocation.
pub async fn deliver(
    transport: &impl Transport,
    keys: &KeyStore,
    generation: u64,
    service: &str,
    body: &[u8],
    policy: &RetryPolicy,
) -> (ChunkOutcome, TryCount) {
    deliver_built(
        transport,
        keys,
        generation,
        service,
        || Cow::Borrowed(body),
        policy,
    )
    .await
}

/// As [`deliver`], with the body built anew for every try (an alert point is
/// stamped when its try starts, not when its first try did).
pub async fn deliver_built<'b>(
    transport: &impl Transport,
    keys: &KeyStore,
    generation: u64,
    service: &str,
    body_for_try: impl Fn() -> Cow<'b, [u8]>,
    policy: &RetryPolicy,
) -> (ChunkOutcome, TryCount) {
    let mut count = TryCount::default();
    let mut key = keys.current().await;
    let mut refreshed = false;
    let mut last_problem = String::from("no try was made");
    // Bounded: every turn makes one request, and the try budget ends the loop.
    for _ in 0..policy.max_attempts.saturating_add(1) {
        let remaining = policy.give_up_at.saturating_duration_since(Instant::now());
        if remaining < MIN_REQUEST_TIME {
            return (
                ChunkOutcome::GaveUp {
                    detail: format!(
                        "stopped before the invocation's deadline; last problem: {last_problem}"
                    ),
                },
                count,
            );
        }
        if count.requests > 0 {
            count.retries += 1;
        }
        count.requests += 1;
        let body = body_for_try();
        let result = transport
            .post_tsdb(service, &body, &key, policy.request_timeout.min(remaining))
            .await;
        last_problem = describe(&result);
        let wait = match classify(&result) {
            Verdict::Delivered => return (ChunkOutcome::Delivered, count),
            Verdict::Permanent(SetAsideReason::MackerelRedirected) => {
                return (
                    ChunkOutcome::Permanent {
                        reason: SetAsideReason::MackerelRedirected,
                        detail: format!(
                            "the Mackerel API base answered with a redirect ({last_problem}); redirects are never followed, because the API key would go to that host: set MACKEREL_API_BASE to the API's own address (https://api.mackerelio.com or your organisation's endpoint), then redrive"
                        ),
                    },
                    count,
                )
            }
            Verdict::Permanent(reason) => {
                return (
                    ChunkOutcome::Permanent {
                        reason,
                        detail: format!("Mackerel refused the values for service {service:?}: {last_problem}"),
                    },
                    count,
                )
            }
            Verdict::RefusedContent => {
                return (
                    ChunkOutcome::RefusedContent {
                        detail: format!("Mackerel refused the values for service {service:?}: {last_problem}"),
                    },
                    count,
                )
            }
            Verdict::RefreshKey if !refreshed => {
                refreshed = true;
                key = keys.refresh_once(generation).await;
                Duration::ZERO
            }
            Verdict::RefreshKey => {
                return (
                    ChunkOutcome::Permanent {
                        reason: SetAsideReason::MackerelForbidden,
                        detail: format!(
                            "Mackerel refused the API key even after it was fetched again ({last_problem}); check that the key has write permission and that the function's egress IP is allowed, then redrive"
                        ),
                    },
                    count,
                )
            }
            Verdict::Retry { not_before } => {
                if count.requests >= policy.max_attempts {
                    return (
                        ChunkOutcome::GaveUp {
                            detail: format!("{} tries failed; last problem: {last_problem}", count.requests),
                        },
                        count,
                    );
                }
                let jittered = backoff(
                    count.requests,
                    policy.backoff_base,
                    policy.backoff_cap,
                    (policy.jitter)(),
                );
                // The server's own estimate beats our guess, but never past the time left.
                not_before.unwrap_or(jittered)
            }
        };
        let left = policy.give_up_at.saturating_duration_since(Instant::now());
        if wait.saturating_add(MIN_REQUEST_TIME) > left {
            return (
                ChunkOutcome::GaveUp {
                    detail: format!(
                        "no time left to wait {} before the invocation's deadline; last problem: {last_problem}",
                        wait_text(wait)
                    ),
                },
                count,
            );
        }
        tokio::time::sleep(wait).await;
    }
    (
        ChunkOutcome::GaveUp {
            detail: format!(
                "{} tries failed; last problem: {last_problem}",
                count.requests
            ),
        },
        count,
    )
}

/// A wait as text; a server may ask for an absurd one.
fn wait_text(wait: Duration) -> String {
    if wait.as_secs() >= 3600 {
        format!("{} s (as the server asked)", wait.as_secs())
    } else {
        format!("{} ms", wait.as_millis())
    }
}

fn describe(result: &AttemptResult) -> String {
    match result {
        AttemptResult::Answered(answer) => {
            let mut text = format!("HTTP {}", answer.status);
            if let Some(location) = &answer.location {
                text.push_str(&format!(" to {location}"));
            }
            if (200..300).contains(&answer.status) && !answer.mackerel_success {
                text.push_str(" without Mackerel's success answer (a proxy's page?)");
            }
            if !answer.message.is_empty() {
                text.push_str(&format!(": {}", answer.message));
            }
            text
        }
        AttemptResult::TimedOut => "no answer within the request timeout".to_owned(),
        AttemptResult::Unreachable(why) => format!("could not reach Mackerel: {why}"),
    }
}
