//! The waits between tries, on tokio's paused clock: exponential with full
//! jitter up to a cap, the server's Retry-After honoured, never past the deadline.

use std::time::Duration;

use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::delivery::{deliver, ChunkOutcome, RetryPolicy};
use sfn_mackerel_consumer::retry::{Answer, AttemptResult};
use sfn_mackerel_testkit::doubles::ScriptedTransport;
use tokio::time::Instant;

fn status(status: u16, retry_after: Option<u64>) -> AttemptResult {
    AttemptResult::Answered(Answer {
        retry_after: retry_after.map(Duration::from_secs),
        ..Answer::mackerel(status)
    })
}

fn policy(max_attempts: u32, give_up_in: Duration, jitter: fn() -> f64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        request_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(500),
        give_up_at: Instant::now() + give_up_in,
        jitter,
    }
}

async fn keys() -> KeyStore {
    KeyStore::load(FixedKey(ApiKey::new("k").unwrap()))
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn waits_double_up_to_the_cap_at_full_jitter_ceiling() {
    let transport = ScriptedTransport::answering(vec![status(500, None); 5]);
    let (outcome, count) = deliver(
        &transport,
        &keys().await,
        1,
        "svc",
        b"[]",
        &policy(6, Duration::from_secs(60), || 1.0),
    )
    .await;
    assert_eq!(outcome, ChunkOutcome::Delivered);
    assert_eq!(count.requests, 6);
    assert_eq!(transport.gaps_ms(), vec![100, 200, 400, 500, 500]);
}

#[tokio::test(start_paused = true)]
async fn jitter_picks_a_wait_below_the_ceiling() {
    let transport = ScriptedTransport::answering(vec![status(503, None); 2]);
    deliver(
        &transport,
        &keys().await,
        1,
        "svc",
        b"[]",
        &policy(5, Duration::from_secs(60), || 0.25),
    )
    .await;
    assert_eq!(transport.gaps_ms(), vec![25, 50]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_out_exactly() {
    let transport = ScriptedTransport::answering(vec![status(429, Some(7))]);
    let (outcome, _) = deliver(
        &transport,
        &keys().await,
        1,
        "svc",
        b"[]",
        &policy(5, Duration::from_secs(60), || 1.0),
    )
    .await;
    assert_eq!(outcome, ChunkOutcome::Delivered);
    assert_eq!(transport.gaps_ms(), vec![7_000]);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_cross_the_deadline_is_not_started() {
    let transport = ScriptedTransport::answering(vec![status(429, Some(30))]);
    let started = Instant::now();
    let (outcome, count) = deliver(
        &transport,
        &keys().await,
        1,
        "svc",
        b"[]",
        &policy(5, Duration::from_secs(10), || 1.0),
    )
    .await;
    assert!(
        matches!(outcome, ChunkOutcome::GaveUp { .. }),
        "{outcome:?}"
    );
    assert_eq!(count.requests, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn the_try_budget_counts_the_first_try() {
    let transport = ScriptedTransport::answering(vec![status(500, None); 10]);
    let (outcome, count) = deliver(
        &transport,
        &keys().await,
        1,
        "svc",
        b"[]",
        &policy(3, Duration::from_secs(60), || 1.0),
    )
    .await;
    assert!(matches!(outcome, ChunkOutcome::GaveUp { detail } if detail.contains("3 tries")));
    assert_eq!((count.requests, count.retries), (3, 2));
}
