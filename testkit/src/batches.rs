//! The consumer driven the way an event source mapping drives it, for the
//! benches that count what a design costs: a Mackerel stand-in whose every
//! request (reads included) takes a set time, like a round trip to Mackerel's
//! API, and the handler fed a few batches at a time, each batch's duration kept
//! (it is what Lambda bills).

use std::time::{Duration, Instant};

use futures::StreamExt;
use mackerel_standin::{Config, FaultConfig, RunningStandIn, StandIn};
use sfn_mackerel_consumer::delivery::Transport;
use sfn_mackerel_consumer::dlq::DeadLetters;
use sfn_mackerel_consumer::{Consumer, InboundMessage};

/// The stand-in with `api_key` and `services`, every request answered after `latency_ms`.
pub async fn slow_standin(api_key: &str, services: &[String], latency_ms: u64) -> RunningStandIn {
    let mut config = Config::new()
        .with_api_key(api_key)
        .with_faults(FaultConfig {
            latency_ms,
            fault_read_api: true,
            ..FaultConfig::default()
        });
    for service in services {
        config = config.with_service(service.clone());
    }
    StandIn::start(config).await.expect("the stand-in starts")
}

/// A message as the queue hands it over, sent at `sent_at_ms`.
pub fn queued(id: String, body: String, sent_at_ms: i64) -> InboundMessage {
    InboundMessage {
        id,
        body,
        sent_at_ms: Some(sent_at_ms),
        first_sent_attribute: None,
        source_queue_arn: None,
    }
}

/// What feeding the handler in batches took.
#[derive(Debug, Clone)]
pub struct BatchesHandled {
    /// Each batch's time from the handler's start to its answer: one invocation's duration.
    pub durations: Vec<Duration>,
    /// From the first batch's start to the last one's answer.
    pub wall: Duration,
    /// Messages the handler reported as failed (they would come back).
    pub returned: usize,
}

impl BatchesHandled {
    /// Every invocation's duration rounded up to the millisecond, as Lambda bills it, summed.
    pub fn billed_ms(&self) -> u128 {
        self.durations
            .iter()
            .map(|d| d.as_micros().div_ceil(1000).max(1))
            .sum()
    }
}

/// Hands `messages` to the handler in batches of `batch_size`, `in_flight` at a
/// time (the event source mapping's `maximum_concurrency`), each with five
/// minutes to answer.
pub async fn handle_in_batches<T: Transport, D: DeadLetters>(
    consumer: &Consumer<T, D>,
    messages: &[InboundMessage],
    batch_size: usize,
    in_flight: usize,
) -> BatchesHandled {
    let started = Instant::now();
    let handled: Vec<(Duration, usize)> = futures::stream::iter(messages.chunks(batch_size))
        .map(|batch| async move {
            let began = Instant::now();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            let returned = consumer
                .handle(batch, deadline)
                .await
                .failed_ids(batch)
                .len();
            (began.elapsed(), returned)
        })
        .buffered(in_flight)
        .collect()
        .await;
    BatchesHandled {
        durations: handled.iter().map(|(duration, _)| *duration).collect(),
        wall: started.elapsed(),
        returned: handled.iter().map(|(_, returned)| returned).sum(),
    }
}

/// What the stand-in was asked: (metric posts, series reads).
pub fn mackerel_requests(standin: &RunningStandIn) -> (u64, u64) {
    let counters = standin.counters();
    let reads = counters
        .requests_by_kind
        .get("metrics_read")
        .copied()
        .unwrap_or(0);
    (counters.tsdb_requests_total, reads)
}
