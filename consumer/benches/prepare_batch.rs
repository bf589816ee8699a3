//! How long the handler's CPU work takes for a 10,000-record SQS event (decode,
//! validate, group, merge, serialize the request bodies), next to the floor of
//! merely parsing the same event JSON. The goal is at most 2x that floor.
//!
//! Run: `cargo bench -p sfn-mackerel-consumer --bench prepare_batch`
//! (`BENCH_RUNS=N` changes the number of runs, 41 by default; use a small
//! number under callgrind).
//!
//! These machines are shared and noisy, so the figure that counts is a ratio
//! measured in the same run: every run times the floor and the whole back to
//! back (alternating which goes first), and the ratio reported is the median of
//! the per-run ratios. The stages are timed too, to show where the time goes.
//!
//! Every run also times the same work for a batch of the same size whose
//! records are EventBridge events (Glue job and workflow status changes, as an
//! EventBridge rule puts them on the queue), so the CPU per record of the two
//! ways results arrive is compared within one run.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::handler::prepare;
use sfn_mackerel_consumer::InboundMessage;
use sfn_mackerel_message::{decode, DecodeContext, TimeWindow};
use sfn_mackerel_testkit::events::{execution_status_change, glue_job_state_change};

const RECORDS: usize = 10_000;
const NOW: i64 = 1_795_981_423;

const JOBS: [&str; 5] = [
    "make_rawdata",
    "make_alarm",
    "make_order",
    "load_users",
    "score",
];

/// The job of record `i`: 40 jobs.
fn job_of(i: usize) -> String {
    format!("{}_{}", JOBS[i % JOBS.len()], i % 8)
}

/// When record `i`'s job ended: spread over the last hour.
fn time_of(i: usize) -> i64 {
    NOW - (i as i64 * 7) % 3_600
}

/// A realistic event: 5 services, 40 jobs, a mix of single and two-value
/// messages, timestamps spread over the last hour, 1% malformed.
fn event_json() -> String {
    sqs_event((0..RECORDS).map(|i| {
        let service = format!("team-{}", i % 5);
        let job = job_of(i);
        let time = time_of(i);
        if i % 100 == 99 {
            "{\"service\": \"broken".to_owned()
        } else if i % 2 == 0 {
                serde_json::json!({"service": service, "time": format!("2026-11-29T{:02}:{:02}:{:02}.229Z", (time / 3600) % 24, (time / 60) % 60, time % 60),
                    "metrics": [{"name": format!("prd.glue.job.{job}.failed"), "value": (i % 17 == 0) as u8},
                                {"name": format!("prd.glue.job.{job}.seconds"), "value": 30 + i % 300}]})
                .to_string()
        } else {
            serde_json::json!({"service": service, "name": format!("prd.glue.job.{job}.failed"), "value": 0, "time": time}).to_string()
        }
    }))
}

/// The same number of results as EventBridge puts them on the queue: nine in
/// ten Glue Job State Changes of the same 40 jobs (one in 17 FAILED), one in ten
/// Step Functions Execution Status Changes, 1% malformed. Each event is AWS's
/// documentation sample with its fields changed.
fn eventbridge_event_json() -> String {
    sqs_event((0..RECORDS).map(|i| {
        let time = time_of(i);
        let id = format!("5f0c3a7e-0000-4000-8000-{i:012}");
        if i % 100 == 99 {
            "{\"version\": \"0\", \"id\": \"broken".to_owned()
        } else if i % 10 == 9 {
            let (start, stop) = ((time - 300) * 1000, time * 1000 + 229);
            let machine = format!("nightly_{}", i % 5);
            execution_status_change(&id, &machine, "SUCCEEDED", start, Some(stop))
        } else {
            let state = if i % 17 == 0 { "FAILED" } else { "SUCCEEDED" };
            glue_job_state_change(&id, &job_of(i), state, time)
        }
    }))
}

/// An SQS event as Lambda delivers it, one record per body.
fn sqs_event(bodies: impl Iterator<Item = String>) -> String {
    let records: Vec<serde_json::Value> = bodies
        .enumerate()
        .map(|(i, body)| {
            serde_json::json!({
                "messageId": format!("3f1c2a9e-0000-4000-8000-{i:012}"),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a".repeat(4),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": ((NOW - 5) * 1000).to_string(),
                    "SenderId": "AROAEXAMPLE:states", "ApproximateFirstReceiveTimestamp": (NOW * 1000).to_string()},
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:results",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

fn settings() -> Settings {
    let vars: HashMap<String, String> = [
        ("MACKEREL_API_KEY", "k"),
        ("DLQ_URL", "u"),
        // Events go to the services as the Terraform module's EVENT_SERVICES would send them.
        (
            "EVENT_SERVICES",
            r#"[{"names": "*_0", "service": "team-0"}, {"names": "*_1", "service": "team-1"}, {"names": "*_2", "service": "team-2"}, {"names": "*_3", "service": "team-3"}, {"names": "*", "service": "team-4"}]"#,
        ),
        ("EVENT_GLUE_PREFIX", "prd.glue.job"),
        ("EVENT_WORKFLOW_PREFIX", "prd.sfn.workflow"),
    ]
    .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_vars(&vars).expect("bench settings are valid")
}

fn parse_event(json: &str) -> SqsEvent {
    serde_json::from_str(black_box(json)).expect("event parses")
}

/// The event parsed the way lambda_runtime 1.5 does it before the handler
/// runs (tracking the JSON path for its error messages): the floor the Lambda
/// binary really pays.
fn parse_event_like_lambda_runtime(json: &str) -> SqsEvent {
    let mut deserializer = serde_json::Deserializer::from_slice(black_box(json.as_bytes()));
    serde_path_to_error::deserialize(&mut deserializer).expect("event parses")
}

fn inbound_messages(event: SqsEvent) -> Vec<InboundMessage> {
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| InboundMessage::from_lambda_record(i, r).expect("ids are set"))
        .collect()
}

fn timed(work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(seconds: f64) -> f64 {
    seconds * 1e3
}

fn per_record_us(seconds: f64) -> f64 {
    seconds * 1e6 / RECORDS as f64
}

/// The handler's whole pure work on one event: parse, convert, prepare, pack;
/// returns how many request bodies it made.
fn whole_work(json: &str, settings: &Settings) -> usize {
    let messages = inbound_messages(parse_event(json));
    let prepared = prepare(&messages, NOW, settings);
    let plans = prepared.plan(settings);
    let bodies = plans.iter().map(|plan| plan.chunks.len()).sum();
    black_box(plans);
    bodies
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(41);
    let json = event_json();
    let events_json = eventbridge_event_json();
    let settings = settings();
    let messages = inbound_messages(parse_event(&json));
    let window = TimeWindow::around(NOW, settings.max_future_seconds);

    let mut floor = Vec::with_capacity(runs);
    let mut whole = Vec::with_capacity(runs);
    let mut ratios = Vec::with_capacity(runs);
    let mut events_whole = Vec::with_capacity(runs);
    let mut events_ratios = Vec::with_capacity(runs);
    let mut bodies = 0usize;
    let mut events_bodies = 0usize;
    for run in 0..runs {
        let time_floor = || {
            timed(|| {
                black_box(parse_event(&json));
            })
        };
        let mut time_whole = || timed(|| bodies = whole_work(&json, &settings));
        let mut time_events = || timed(|| events_bodies = whole_work(&events_json, &settings));
        let (f, w, e) = if run % 2 == 0 {
            let f = time_floor();
            let w = time_whole();
            (f, w, time_events())
        } else {
            let e = time_events();
            let w = time_whole();
            (time_floor(), w, e)
        };
        floor.push(f.as_secs_f64());
        whole.push(w.as_secs_f64());
        events_whole.push(e.as_secs_f64());
        ratios.push(w.as_secs_f64() / f.as_secs_f64());
        events_ratios.push(e.as_secs_f64() / w.as_secs_f64());
    }

    // The stages on their own, on messages converted once.
    let mut runtime_floor = Vec::with_capacity(runs);
    let mut convert = Vec::with_capacity(runs);
    let mut decode_only = Vec::with_capacity(runs);
    let mut prepare_only = Vec::with_capacity(runs);
    for _ in 0..runs {
        runtime_floor.push(
            timed(|| {
                black_box(parse_event_like_lambda_runtime(&json));
            })
            .as_secs_f64(),
        );
        let event = parse_event(&json);
        convert.push(
            timed(|| {
                black_box(inbound_messages(event));
            })
            .as_secs_f64(),
        );
        decode_only.push(
            timed(|| {
                for message in &messages {
                    let context = DecodeContext {
                        sent_at: message.sent_at_ms.map(|ms| ms.div_euclid(1000)),
                        window,
                    };
                    let _ = black_box(decode(black_box(&message.body), &context));
                }
            })
            .as_secs_f64(),
        );
        prepare_only.push(
            timed(|| {
                let prepared = prepare(black_box(&messages), NOW, &settings);
                black_box(prepared.plan(&settings));
            })
            .as_secs_f64(),
        );
    }

    let (floor, whole, runtime_floor) = (median(floor), median(whole), median(runtime_floor));
    let (convert, decode_only, prepare_only) =
        (median(convert), median(decode_only), median(prepare_only));
    println!(
        "event: {RECORDS} records, {} bytes, {bodies} request bodies; median of {runs} runs",
        json.len()
    );
    let line = |label: &str, seconds: f64| {
        println!(
            "{label:<44} {:>8.2} ms  {:>6.2} µs/record",
            ms(seconds),
            per_record_us(seconds)
        );
    };
    line("parse event only (the floor)", floor);
    line("parse + decode + group + merge + chunk", whole);
    line("  parse event as lambda_runtime does", runtime_floor);
    line("  stage: records -> InboundMessage", convert);
    line("  stage: decode + validate bodies", decode_only);
    line("  stage: prepare (decode .. chunk)", prepare_only);
    line("  stage: group + merge + chunk (difference)", {
        (prepare_only - decode_only).max(0.0)
    });
    let (ratio, low, high) = median_and_range(ratios);
    println!(
        "ratio (whole / parse only): {ratio:.2}x median of per-run ratios (range {low:.2}x..{high:.2}x); goal: at most 2x"
    );
    println!(
        "in the Lambda binary, lambda_runtime's parse is the floor: handler work adds {:.2}x of it (medians)",
        (whole - floor) / runtime_floor
    );
    let events_messages = inbound_messages(parse_event(&events_json));
    let events_values = prepare(&events_messages, NOW, &settings).summary.values;
    let values = prepare(&messages, NOW, &settings).summary.values;
    println!(
        "EventBridge events, same run: {RECORDS} records, {} bytes, {events_values} values ({values} in the sendMessage batch), {events_bodies} request bodies",
        events_json.len()
    );
    line(
        "  whole work on the event-sourced batch",
        median(events_whole),
    );
    let (ratio, low, high) = median_and_range(events_ratios);
    println!(
        "ratio (events whole / sendMessage whole): {ratio:.2}x median of per-run ratios (range {low:.2}x..{high:.2}x)"
    );
}

/// The median and the range of per-run ratios.
fn median_and_range(mut ratios: Vec<f64>) -> (f64, f64, f64) {
    ratios.sort_by(f64::total_cmp);
    (
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    )
}
