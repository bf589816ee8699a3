//! Getting one tsdb request body accepted by Mackerel: tries, waits and key
//! refreshes, all bounded by a try budget and by the invocation's deadline, so
//! the function answers SQS before Lambda would time it out.

use std::future::Future;
use std::time::Duration;

use sfn_mackerel_message::SetAsideReason;
use tokio::time::Instant;

use crate::api_key::{ApiKey, KeyStore};
use crate::retry::{backoff, classify, AttemptResult, Verdict};

/// Sends one tsdb request (the HTTP client, or a scripted fake in tests).
pub trait Transport: Send + Sync {
    fn post_tsdb(
        &self,
        service: &str,
        body: &[u8],
        key: &ApiKey,
        timeout: Duration,
    ) -> impl Future<Output = AttemptResult> + Send;
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
    /// Still failing when tries or time ran out: the messages go back to the queue.
    GaveUp {
        detail: String,
    },
}

/// What the tries cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TryCount {
    pub requests: u32,
    pub retries: u32,
}

/// The smallest slice of time worth starting a request in.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(200);

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
    let mut count = TryCount::default();
    let mut key = keys.current().await;
    let mut refreshed = false;
    let mut last_problem = String::from("no try was made");
    loop {
        let now = Instant::now();
        let remaining = policy.give_up_at.saturating_duration_since(now);
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
        let result = transport
            .post_tsdb(service, body, &key, policy.request_timeout.min(remaining))
            .await;
        last_problem = describe(&result);
        let wait = match classify(&result) {
            Verdict::Delivered => return (ChunkOutcome::Delivered, count),
            Verdict::Permanent(reason) => {
                return (
                    ChunkOutcome::Permanent {
                        reason,
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
                // The server's own estimate beats our guess.
                not_before.unwrap_or(jittered)
            }
        };
        if Instant::now() + wait + MIN_REQUEST_TIME > policy.give_up_at {
            return (
                ChunkOutcome::GaveUp {
                    detail: format!(
                        "no time left to wait {} ms before the invocation's deadline; last problem: {last_problem}",
                        wait.as_millis()
                    ),
                },
                count,
            );
        }
        tokio::time::sleep(wait).await;
    }
}

fn describe(result: &AttemptResult) -> String {
    match result {
        AttemptResult::Answered {
            status, message, ..
        } if message.is_empty() => format!("HTTP {status}"),
        AttemptResult::Answered {
            status, message, ..
        } => format!("HTTP {status}: {message}"),
        AttemptResult::TimedOut => "no answer within the request timeout".to_owned(),
        AttemptResult::Unreachable(why) => format!("could not reach Mackerel: {why}"),
    }
}
