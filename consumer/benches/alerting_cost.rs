//! What the alerting guarantee costs, and what the FIFO design it was weighed
//! against would: the same job results handled in the same run, in batches the
//! way each design's event source mapping forms them, against the Mackerel
//! stand-in with a latency on every request (reads included). Reports Mackerel
//! requests (posts and reads), requests per 1,000 values, wall time, and each
//! mode's ratio to the consumer without the guarantee.
//!
//! No queue is involved (the handler is driven directly, two batches at a time
//! like the Terraform module's `maximum_concurrency`): the drain bench measures
//! the queue; this one measures what changes between the designs.
//!
//! `cargo bench -p sfn-mackerel-consumer --bench alerting_cost`.
//! `BENCH_LATENCY_MS` (default 20: a round trip to Mackerel's API).
//!
//! Modes, per volume:
//! - **standard, STATUS_ALERTS=off**: before the guarantee;
//! - **standard, STATUS_ALERTS=on**: the design chosen (`<job>.alert`, reads);
//! - **FIFO, STATUS_ALERTS=off**: batches of at most 10 (a FIFO event source's
//!   limit), one value per request body as before. A lower bound of FIFO's
//!   cost: its per-group ordering, which also serializes a job's batches, is
//!   not modelled.

use std::time::Duration;

use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::InboundMessage;
use sfn_mackerel_testkit::batches::{handle_in_batches, mackerel_requests, queued, slow_standin};
use sfn_mackerel_testkit::doubles::MemoryDeadLetters;
use sfn_mackerel_testkit::local::http_consumer;

const API_KEY: &str = "bench-key";
const SERVICES: usize = 10;
const IN_FLIGHT: usize = 2;

/// One status per message: 10 services, `jobs` jobs each, one failure in 13,
/// job times one per `spacing` seconds in arrival order, ending a minute ago.
fn results(n: usize, jobs: usize, spacing: i64, now: i64) -> Vec<InboundMessage> {
    (0..n)
        .map(|i| {
            let body = serde_json::json!({
                "service": format!("team-{}", i % SERVICES),
                "name": format!("prd.glue.job.job_{:02}.failed", (i / SERVICES) % jobs),
                "value": u8::from(i % 13 == 0),
                "time": now - 60 - (n - i) as i64 * spacing,
            });
            queued(format!("m-{i}"), body.to_string(), now * 1000)
        })
        .collect()
}

struct Measured {
    posts: u64,
    reads: u64,
    wall: Duration,
    failed: usize,
}

async fn run(
    messages: &[InboundMessage],
    batch_size: usize,
    alerts: bool,
    latency_ms: u64,
) -> Measured {
    let services: Vec<String> = (0..SERVICES).map(|s| format!("team-{s}")).collect();
    let standin = slow_standin(API_KEY, &services, latency_ms).await;
    let vars = [
        ("MACKEREL_API_KEY", API_KEY.to_owned()),
        ("DLQ_URL", "http://127.0.0.1:1/unused".to_owned()),
        ("MACKEREL_API_BASE", standin.base_url()),
        (
            "STATUS_ALERTS",
            if alerts { "on" } else { "off" }.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::from_vars(&vars).expect("settings");
    let consumer = http_consumer(settings, API_KEY, MemoryDeadLetters::default()).await;
    let handled = handle_in_batches(&consumer, messages, batch_size, IN_FLIGHT).await;
    let (posts, reads) = mackerel_requests(&standin);
    Measured {
        posts,
        reads,
        wall: handled.wall,
        failed: handled.returned,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let latency: u64 = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // (what, results, jobs per service, seconds between results, standard
    // batch size): a 20 s batching window gathers what arrived in it at the
    // realistic volumes.
    let volumes: [(&str, usize, usize, i64, usize); 4] = [
        ("300 results an hour, 50 jobs a service", 300, 50, 12, 2),
        ("3,000 results an hour, 50 jobs a service", 3_000, 50, 1, 17),
        (
            "load test: 10,000 results at once, 5 jobs a service",
            10_000,
            5,
            0,
            1_000,
        ),
        (
            "load test: 10,000 results at once, 50 jobs a service",
            10_000,
            50,
            0,
            1_000,
        ),
    ];
    println!("stand-in latency {latency} ms per request (reads included), {IN_FLIGHT} batches at a time, {SERVICES} services");
    for (what, count, jobs, spacing, standard_batch) in volumes {
        let messages = results(count, jobs, spacing, now);
        let modes = [
            ("standard, STATUS_ALERTS=off", standard_batch, false),
            ("standard, STATUS_ALERTS=on ", standard_batch, true),
            (
                "FIFO (<= 10), STATUS_ALERTS=off",
                standard_batch.min(10),
                false,
            ),
        ];
        println!(
            "-- {what} (batches of {standard_batch}; FIFO {})",
            standard_batch.min(10)
        );
        let mut baseline: Option<(u64, f64)> = None;
        for (mode, batch_size, alerts) in modes {
            let m = run(&messages, batch_size, alerts, latency).await;
            let requests = m.posts + m.reads;
            let (base_requests, base_wall) =
                *baseline.get_or_insert((requests, m.wall.as_secs_f64()));
            println!(
                "   {mode:<32} {:>6} posts {:>6} reads  {:>7.1} requests per 1,000 values  {:>7.2} s   x{:.2} requests  x{:.2} wall{}",
                m.posts,
                m.reads,
                1000.0 * requests as f64 / count as f64,
                m.wall.as_secs_f64(),
                requests as f64 / base_requests as f64,
                m.wall.as_secs_f64() / base_wall,
                if m.failed > 0 { format!("  ({} returned)", m.failed) } else { String::new() }
            );
        }
    }
}
