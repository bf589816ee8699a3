//! Draining the same N messages from moto's SQS into the Mackerel stand-in, in one
//! run: (1) a bare ReceiveMessage + DeleteMessageBatch loop with no processing,
//! the queue's own limit; (2) this consumer's queue runner; (3) the old
//! Lambda-per-metric design, one Mackerel request per value. Reports requests
//! made, wall time, and the ratios between them. The old design is a mode of
//! this bench, not a second product.
//!
//! Needs moto: `source scripts/lib.sh; ensure_venv; start_moto;
//! cargo bench -p sfn-mackerel-consumer --bench drain; stop_started`.
//! `BENCH_MESSAGES` (default 10000), `BENCH_CONCURRENCY` (default 2, for every
//! mode alike, as the Terraform module's maximum_concurrency), `BENCH_BATCH_SIZE`
//! and `BENCH_WINDOW_MS` (default 1000 and 10000: the runner's batch size and
//! batching window, like the module's event source mapping), `BENCH_LATENCIES_MS`
//! (default "0,20,100": the stand-in's added latency per request; 0 is loopback,
//! 20 ms a round trip to Mackerel's API, 100 ms closer to what the old design
//! paid per value with a Lambda invocation in front of each request).
//! `BENCH_SEND_ONLY=1` stops after filling the first queue: the bare
//! SendMessageBatch loop that `scripts/bench/flood-vs-bare.sh` compares the CLI with.
//! The consumer runs with `STATUS_ALERTS=off`: what the alerting guarantee costs
//! on top is measured by the `alerting_cost` bench.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use futures::StreamExt;
use mackerel_standin::RunningStandIn;
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::dlq::SqsDeadLetters;
use sfn_mackerel_consumer::runner::{run_queue, RunnerOptions};
use sfn_mackerel_testkit::batches::slow_standin;
use sfn_mackerel_testkit::local::{http_consumer, sqs, LocalQueues, QueueSettings};

const API_KEY: &str = "bench-key";
const SERVICES: usize = 10;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One value per message, as the old design sent them: 10 services, 50 jobs,
/// times spread over the last 30 minutes.
fn bodies(n: usize, now: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "service": format!("team-{}", i % SERVICES),
                "name": format!("prd.glue.job.job_{:02}.failed", (i / SERVICES) % 50),
                "value": (i % 13 == 0) as u8,
                "time": now - ((i * 7) % 1800) as i64,
            })
            .to_string()
        })
        .collect()
}

/// A results queue shaped like the module's (with its DLQ), hiding a received
/// message for 60 s: longer than any mode's drain takes to delete it.
async fn fresh_queue(name: &str) -> String {
    LocalQueues::create(name, QueueSettings::default().visibility(60))
        .await
        .source_url
}

/// Fills the queue with SendMessageBatch, 8 calls at a time; returns messages per second.
async fn fill(sqs: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> f64 {
    let started = Instant::now();
    futures::stream::iter(bodies.chunks(10))
        .map(|group| async move {
            let entries: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(b)
                        .build()
                        .expect("entry")
                })
                .collect();
            let out = sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("SendMessageBatch");
            assert!(out.failed().is_empty(), "send failures: {:?}", out.failed());
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    bodies.len() as f64 / started.elapsed().as_secs_f64()
}

/// Receives up to 10 messages at a time, `handle`s them, deletes them; `workers` loops
/// until `total` messages were deleted (bounded by a 10-minute limit).
async fn receive_loop<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    total: usize,
    workers: usize,
    handle: F,
) -> Duration
where
    F: Fn(Vec<aws_sdk_sqs::types::Message>) -> Fut + Clone,
    Fut: std::future::Future<Output = ()>,
{
    let deleted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let limit = Duration::from_secs(600);
    let loops = (0..workers).map(|_| {
        let deleted = deleted.clone();
        let handle = handle.clone();
        async move {
            while deleted.load(Ordering::Relaxed) < total && started.elapsed() < limit {
                let out = sqs
                    .receive_message()
                    .queue_url(queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    continue;
                }
                let entries: Vec<_> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .build()
                            .expect("entry")
                    })
                    .collect();
                let count = entries.len();
                handle(messages).await;
                sqs.delete_message_batch()
                    .queue_url(queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .expect("DeleteMessageBatch");
                deleted.fetch_add(count, Ordering::Relaxed);
            }
        }
    });
    futures::future::join_all(loops).await;
    assert!(
        deleted.load(Ordering::Relaxed) >= total,
        "the loop did not drain the queue within {limit:?}"
    );
    started.elapsed()
}

async fn standin(latency_ms: u64) -> RunningStandIn {
    let services: Vec<String> = (0..SERVICES).map(|s| format!("team-{s}")).collect();
    slow_standin(API_KEY, &services, latency_ms).await
}

/// Mode 2: this consumer's runner; returns (wall time, tsdb requests).
async fn drain_with_runner(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    total: usize,
    workers: usize,
    latency_ms: u64,
) -> (Duration, u64) {
    let standin = standin(latency_ms).await;
    let dlq_url = fresh_queue("bench-dlq").await;
    let vars = [
        ("MACKEREL_API_KEY", API_KEY.to_owned()),
        ("DLQ_URL", dlq_url.clone()),
        ("MACKEREL_API_BASE", standin.base_url()),
        // The posting path alone, as the old design had it; what the alerting
        // guarantee adds (reads, alert posts) is the alerting_cost bench's.
        ("STATUS_ALERTS", "off".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::from_vars(&vars).expect("settings");
    let consumer = http_consumer(
        settings,
        API_KEY,
        SqsDeadLetters {
            client: sqs.clone(),
            queue_url: dlq_url,
        },
    )
    .await;
    let options = RunnerOptions {
        queue_url: queue_url.to_owned(),
        batch_size: env_number("BENCH_BATCH_SIZE", 1000),
        batching_window: Duration::from_millis(env_number("BENCH_WINDOW_MS", 10_000) as u64),
        concurrency: workers,
        visibility_timeout: None,
        exit_when_idle: None,
    };
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let accepted_target = total as u64;
    let watcher = {
        async {
            // Stops the runner once every value is in (bounded: 10 minutes).
            while standin.counters().values_received < accepted_target
                && started.elapsed() < Duration::from_secs(600)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let elapsed = started.elapsed();
            let _ = stop_sender.send(true);
            elapsed
        }
    };
    let (tally, elapsed) = tokio::join!(
        run_queue(Arc::new(consumer), sqs.clone(), options, stop),
        watcher
    );
    tally.expect("the runner ran");
    let requests = standin.counters().tsdb_requests_total;
    (elapsed, requests)
}

/// Mode 3: the old design, one Mackerel request per value.
async fn drain_one_request_per_value(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    total: usize,
    workers: usize,
    latency_ms: u64,
) -> (Duration, u64) {
    let standin = standin(latency_ms).await;
    let http = reqwest::Client::new();
    let base = standin.base_url();
    let elapsed = receive_loop(sqs, queue_url, total, workers, |messages| {
        let http = http.clone();
        let base = base.clone();
        async move {
            for message in messages {
                let body: serde_json::Value = serde_json::from_str(message.body().unwrap_or_default()).expect("bench bodies are JSON");
                let point = serde_json::json!([{"name": body["name"], "time": body["time"], "value": body["value"]}]);
                let url = format!("{base}/api/v0/services/{}/tsdb", body["service"].as_str().unwrap_or_default());
                let response = http.post(url).header("X-Api-Key", API_KEY).json(&point).send().await.expect("POST");
                assert!(response.status().is_success(), "{}", response.status());
            }
        }
    })
    .await;
    (elapsed, standin.counters().tsdb_requests_total)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = env_number("BENCH_MESSAGES", 10_000);
    let workers = env_number("BENCH_CONCURRENCY", 2);
    let latencies: Vec<u64> = std::env::var("BENCH_LATENCIES_MS")
        .unwrap_or_else(|_| "0,20,100".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let sqs = sqs().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let bodies = bodies(total, now);
    println!("draining {total} messages (one value each, {SERVICES} services), {workers} workers/batches at a time in every mode");

    let queue = fresh_queue("bench-bare").await;
    let send_rate = fill(&sqs, &queue, &bodies).await;
    let bare = receive_loop(&sqs, &queue, total, workers, |_| async {}).await;
    let bare_rate = total as f64 / bare.as_secs_f64();
    println!("bare SendMessageBatch loop (8 in flight):   {send_rate:>8.0} msg/s");
    if std::env::var_os("BENCH_SEND_ONLY").is_some() {
        return;
    }
    println!(
        "bare receive + delete loop:                 {bare_rate:>8.0} msg/s  ({:.2} s)",
        bare.as_secs_f64()
    );

    for latency in latencies {
        let queue = fresh_queue("bench-consumer").await;
        fill(&sqs, &queue, &bodies).await;
        let (consumer_time, consumer_requests) =
            drain_with_runner(&sqs, &queue, total, workers, latency).await;
        let queue = fresh_queue("bench-old").await;
        fill(&sqs, &queue, &bodies).await;
        let (old_time, old_requests) =
            drain_one_request_per_value(&sqs, &queue, total, workers, latency).await;
        let consumer_rate = total as f64 / consumer_time.as_secs_f64();
        println!("-- stand-in latency {latency} ms per request");
        println!("   this consumer (runner):   {consumer_requests:>6} requests  {:>7.2} s  {consumer_rate:>7.0} msg/s  = {:.0}% of the bare loop", consumer_time.as_secs_f64(), 100.0 * consumer_rate / bare_rate);
        println!(
            "   old design (1 per value): {old_requests:>6} requests  {:>7.2} s  {:>7.0} msg/s",
            old_time.as_secs_f64(),
            total as f64 / old_time.as_secs_f64()
        );
        println!(
            "   ratios: {:.0}x fewer requests, {:.1}x less wall time",
            old_requests as f64 / consumer_requests.max(1) as f64,
            old_time.as_secs_f64() / consumer_time.as_secs_f64()
        );
    }
}
