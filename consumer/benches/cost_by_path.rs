//! What a million job results cost in AWS charges on each path that brings
//! them to Mackerel, computed from what this consumer measurably does with the
//! same results in the same run: the old design (the workflow invokes a Lambda
//! per value: two Standard-workflow state transitions and one invocation per
//! result), the `sendMessage` path (one transition per result, batched
//! invocations) and the EventBridge path (no transition: Glue's own events,
//! with or without the workflow rule's execution events).
//!
//! `cargo bench -p sfn-mackerel-consumer --bench cost_by_path`.
//! `BENCH_BATCH_SIZE` (default 17: what a 20 s batching window gathers at 3,000
//! results an hour), `BENCH_LATENCY_MS` (default 20: a round trip to
//! Mackerel's API, applied to every request, reads included).
//!
//! Measured here: invocations (batches), each invocation's duration (the
//! handler's time against the stand-in with that latency, billed rounded up to
//! the millisecond) and the SQS requests the batches imply. Taken as stated:
//! the function's memory (the module's default 128 MB; the binary peaks at
//! 31 MiB on 10,000 records, BENCHMARKS section 2) and AWS's list prices in
//! us-east-1 (and Tokyo, where they are the same), from AWS's pricing pages:
//! <https://aws.amazon.com/step-functions/pricing/>,
//! <https://aws.amazon.com/lambda/pricing/>, <https://aws.amazon.com/sqs/pricing/>,
//! <https://aws.amazon.com/eventbridge/pricing/>. Free tiers are left out.
//! The old design is modelled by this consumer handling one value per
//! invocation without the alerting reads: a lower bound of what that Lambda
//! cost, which also read its key and started a client per cold start.

use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::InboundMessage;
use sfn_mackerel_testkit::batches::{
    handle_in_batches, mackerel_requests, queued, slow_standin, BatchesHandled,
};
use sfn_mackerel_testkit::doubles::MemoryDeadLetters;
use sfn_mackerel_testkit::events::{execution_status_change, glue_job_state_change};
use sfn_mackerel_testkit::local::http_consumer;

const API_KEY: &str = "bench-key";
const SERVICES: usize = 10;
const JOBS_PER_SERVICE: usize = 50;
/// Jobs one workflow execution runs: the workflow rule adds one event per execution.
const JOBS_PER_EXECUTION: usize = 10;
/// An hour's results at 3,000 an hour.
const RESULTS: usize = 3_000;
const IN_FLIGHT: usize = 2;
const METRIC_PREFIX: &str = "prd.glue.job";
const WORKFLOW_PREFIX: &str = "prd.sfn.workflow";

/// The module's default memory_size_mb.
const MEMORY_MB: f64 = 128.0;
/// US$ per Standard-workflow state transition ($0.025 per 1,000).
const PRICE_TRANSITION: f64 = 0.025 / 1_000.0;
/// US$ per Lambda request ($0.20 per million).
const PRICE_INVOCATION: f64 = 0.20 / 1_000_000.0;
/// US$ per GB-second on arm64, the architecture the module deploys.
const PRICE_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
/// US$ per SQS request on a standard queue ($0.40 per million; a message under
/// 64 KiB is one request).
const PRICE_SQS_REQUEST: f64 = 0.40 / 1_000_000.0;
/// AWS service events on the default event bus, their rules and deliveries:
/// free. The SendMessage a rule's SQS target makes is an SQS request, counted there.
const PRICE_AWS_SERVICE_EVENT: f64 = 0.0;

/// One job's result: which job, whether it failed, when it ended.
struct JobResult {
    service: String,
    job: String,
    failed: bool,
    time: i64,
}

/// An hour of results, one a second, ending a minute ago; one failure in 13.
fn job_results(now: i64) -> Vec<JobResult> {
    (0..RESULTS)
        .map(|i| {
            let service = i % SERVICES;
            JobResult {
                service: format!("team-{service}"),
                job: format!(
                    "team-{service}_job_{:02}",
                    (i / SERVICES) % JOBS_PER_SERVICE
                ),
                failed: i % 13 == 0,
                time: now - 60 - (RESULTS - i) as i64,
            }
        })
        .collect()
}

/// The body a workflow's sendMessage state sends (and the old Lambda received).
fn job_result_body(result: &JobResult) -> String {
    serde_json::json!({
        "service": result.service,
        "name": format!("{METRIC_PREFIX}.{}.failed", result.job),
        "value": u8::from(result.failed),
        "time": result.time,
    })
    .to_string()
}

/// The Glue Job State Change the job's run emits, as the rule delivers it.
fn glue_event(result: &JobResult, id: usize) -> String {
    let state = if result.failed { "FAILED" } else { "SUCCEEDED" };
    glue_job_state_change(&format!("glue-{id}"), &result.job, state, result.time)
}

/// The Step Functions Execution Status Change of the execution ending at `time`.
fn execution_event(service: &str, time: i64, id: usize) -> String {
    let (start, stop) = ((time - 300) * 1000, time * 1000);
    let machine = format!("{service}_nightly");
    execution_status_change(
        &format!("execution-{id}"),
        &machine,
        "SUCCEEDED",
        start,
        Some(stop),
    )
}

/// One way results reach the consumer.
struct Path {
    name: &'static str,
    /// State transitions per result that exist only to report it.
    transitions_per_result: f64,
    /// Whether the messages come through the queue (SQS requests) or straight
    /// from the workflow (the old Lambda).
    through_queue: bool,
    batch_size: usize,
    status_alerts: bool,
    bodies: Vec<String>,
}

fn paths(results: &[JobResult], batch_size: usize) -> Vec<Path> {
    let job_bodies: Vec<String> = results.iter().map(job_result_body).collect();
    let glue_events: Vec<String> = results
        .iter()
        .enumerate()
        .map(|(i, result)| glue_event(result, i))
        .collect();
    // The workflow rule adds each execution's end after its last job.
    let mut with_executions = Vec::with_capacity(RESULTS + RESULTS / JOBS_PER_EXECUTION);
    for (i, (result, event)) in results.iter().zip(&glue_events).enumerate() {
        with_executions.push(event.clone());
        if i % JOBS_PER_EXECUTION == JOBS_PER_EXECUTION - 1 {
            with_executions.push(execution_event(&result.service, result.time, i));
        }
    }
    vec![
        Path {
            name: "old: a Lambda per value",
            transitions_per_result: 2.0,
            through_queue: false,
            batch_size: 1,
            status_alerts: false,
            bodies: job_bodies.clone(),
        },
        Path {
            name: "sendMessage to the queue",
            transitions_per_result: 1.0,
            through_queue: true,
            batch_size,
            status_alerts: true,
            bodies: job_bodies,
        },
        Path {
            name: "events: Glue rule",
            transitions_per_result: 0.0,
            through_queue: true,
            batch_size,
            status_alerts: true,
            bodies: glue_events,
        },
        Path {
            name: "events: Glue + workflow rules",
            transitions_per_result: 0.0,
            through_queue: true,
            batch_size,
            status_alerts: true,
            bodies: with_executions,
        },
    ]
}

/// What one path did with the hour's results.
struct Measured {
    handled: BatchesHandled,
    messages: usize,
    mackerel_requests: u64,
    sqs_requests: u64,
}

async fn measure(path: &Path, now: i64, latency_ms: u64) -> Measured {
    let services: Vec<String> = (0..SERVICES).map(|s| format!("team-{s}")).collect();
    let standin = slow_standin(API_KEY, &services, latency_ms).await;
    let routes: Vec<serde_json::Value> = services
        .iter()
        .map(|s| serde_json::json!({"names": format!("{s}_*"), "service": s}))
        .collect();
    let vars = [
        ("MACKEREL_API_KEY", API_KEY.to_owned()),
        ("DLQ_URL", "http://127.0.0.1:1/unused".to_owned()),
        ("MACKEREL_API_BASE", standin.base_url()),
        (
            "STATUS_ALERTS",
            if path.status_alerts { "on" } else { "off" }.to_owned(),
        ),
        (
            "EVENT_SERVICES",
            serde_json::Value::from(routes).to_string(),
        ),
        ("EVENT_GLUE_PREFIX", METRIC_PREFIX.to_owned()),
        ("EVENT_WORKFLOW_PREFIX", WORKFLOW_PREFIX.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::from_vars(&vars).expect("settings");
    let consumer = http_consumer(settings, API_KEY, MemoryDeadLetters::default()).await;
    let messages: Vec<InboundMessage> = path
        .bodies
        .iter()
        .enumerate()
        .map(|(i, body)| queued(format!("m-{i}"), body.clone(), now * 1000))
        .collect();
    let handled = handle_in_batches(&consumer, &messages, path.batch_size, IN_FLIGHT).await;
    let (posts, reads) = mackerel_requests(&standin);
    // Per message: the SendMessage that put it on the queue. Per batch: the event
    // source mapping's receives (10 messages each at best) and the deletes of
    // what was handled (DeleteMessageBatch, 10 at a time).
    let sqs_requests = if path.through_queue {
        let per_batch: u64 = messages
            .chunks(path.batch_size)
            .map(|batch| 2 * batch.len().div_ceil(10) as u64)
            .sum();
        messages.len() as u64 + per_batch
    } else {
        0
    };
    Measured {
        messages: messages.len(),
        mackerel_requests: posts + reads,
        sqs_requests,
        handled,
    }
}

/// US$ per million job results, by service.
struct Cost {
    step_functions: f64,
    lambda_requests: f64,
    lambda_duration: f64,
    sqs: f64,
    eventbridge: f64,
}

impl Cost {
    fn of(path: &Path, measured: &Measured) -> Self {
        let per_million = 1_000_000.0 / RESULTS as f64;
        let invocations = measured.handled.durations.len() as f64 * per_million;
        let gb_seconds =
            measured.handled.billed_ms() as f64 / 1000.0 * (MEMORY_MB / 1024.0) * per_million;
        let events = if path.through_queue && path.transitions_per_result == 0.0 {
            measured.messages as f64 * per_million
        } else {
            0.0
        };
        Self {
            step_functions: path.transitions_per_result * 1_000_000.0 * PRICE_TRANSITION,
            lambda_requests: invocations * PRICE_INVOCATION,
            lambda_duration: gb_seconds * PRICE_GB_SECOND_ARM64,
            sqs: measured.sqs_requests as f64 * per_million * PRICE_SQS_REQUEST,
            eventbridge: events * PRICE_AWS_SERVICE_EVENT,
        }
    }

    fn total(&self) -> f64 {
        self.step_functions
            + self.lambda_requests
            + self.lambda_duration
            + self.sqs
            + self.eventbridge
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env_number = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    let latency = env_number("BENCH_LATENCY_MS", 20);
    let batch_size = env_number("BENCH_BATCH_SIZE", 17) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let results = job_results(now);
    println!(
        "{RESULTS} job results ({SERVICES} services, {JOBS_PER_SERVICE} jobs each, one failure in 13, {JOBS_PER_EXECUTION} jobs an execution), batches of {batch_size}, {IN_FLIGHT} at a time, Mackerel latency {latency} ms, {MEMORY_MB} MB arm64"
    );
    println!(
        "per million results: transitions x $0.025/1,000 + invocations x $0.20/M + sum(ceil_ms(duration))/1000 x {:.3} GB x $0.0000133334 + SQS requests x $0.40/M (+ AWS service events $0)",
        MEMORY_MB / 1024.0
    );
    println!(
        "{:<30} {:>8} {:>11} {:>7} {:>8} {:>8} | {:>7} {:>8} {:>6} {:>6} {:>7}",
        "", "", "", "mean", "Mackerel", "SQS", "US$ per million results:", "", "", "", ""
    );
    println!(
        "{:<30} {:>8} {:>11} {:>7} {:>8} {:>8} | {:>7} {:>8} {:>6} {:>6} {:>7}",
        "path",
        "messages",
        "invocations",
        "ms",
        "requests",
        "requests",
        "SFN",
        "Lambda",
        "SQS",
        "EB",
        "total"
    );
    let mut totals = Vec::new();
    for path in paths(&results, batch_size) {
        let measured = measure(&path, now, latency).await;
        let cost = Cost::of(&path, &measured);
        let invocations = measured.handled.durations.len();
        let mean_ms = measured.handled.billed_ms() as f64 / invocations as f64;
        println!(
            "{:<30} {:>8} {:>11} {:>7.1} {:>8} {:>8} | {:>7.2} {:>8.3} {:>6.3} {:>6.2} {:>7.2}{}",
            path.name,
            measured.messages,
            invocations,
            mean_ms,
            measured.mackerel_requests,
            measured.sqs_requests,
            cost.step_functions,
            cost.lambda_requests + cost.lambda_duration,
            cost.sqs,
            cost.eventbridge,
            cost.total(),
            if measured.handled.returned > 0 {
                format!("  ({} returned)", measured.handled.returned)
            } else {
                String::new()
            }
        );
        totals.push((path.name, cost.total()));
    }
    let (_, old) = totals[0];
    for (name, total) in &totals[1..] {
        println!("{name}: {:.1}x cheaper than the old design", old / total);
    }
}
