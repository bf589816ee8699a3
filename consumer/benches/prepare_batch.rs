//! How long the handler's CPU work takes for a 10,000-record SQS event (decode,
//! validate, group, merge, serialize the request bodies), next to the floor of
//! merely parsing the same event JSON. Run: `cargo bench -p sfn-mackerel-consumer`.
//! Prints µs per record and the ratio of the two, measured in the same run.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::handler::prepare;
use sfn_mackerel_consumer::InboundMessage;

const RECORDS: usize = 10_000;
const NOW: i64 = 1_795_981_423;

/// A realistic event: 5 services, 40 jobs, a mix of single and two-value
/// messages, timestamps spread over the last hour, 1% malformed.
fn event_json() -> String {
    let jobs = [
        "make_rawdata",
        "make_alarm",
        "make_order",
        "load_users",
        "score",
    ];
    let records: Vec<serde_json::Value> = (0..RECORDS)
        .map(|i| {
            let service = format!("team-{}", i % 5);
            let job = format!("{}_{}", jobs[i % jobs.len()], i % 8);
            let time = NOW - (i as i64 * 7) % 3_600;
            let body = if i % 100 == 99 {
                "{\"service\": \"broken".to_owned()
            } else if i % 2 == 0 {
                serde_json::json!({"service": service, "time": format!("2026-11-29T19:{:02}:{:02}.229Z", (time / 60) % 60, time % 60),
                    "metrics": [{"name": format!("prd.glue.job.{job}.failed"), "value": (i % 17 == 0) as u8},
                                {"name": format!("prd.glue.job.{job}.seconds"), "value": 30 + i % 300}]})
                .to_string()
            } else {
                serde_json::json!({"service": service, "name": format!("prd.glue.job.{job}.failed"), "value": 0, "time": time}).to_string()
            };
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
    let vars: HashMap<String, String> = [("MACKEREL_API_KEY", "k"), ("DLQ_URL", "u")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_vars(&vars).expect("bench settings are valid")
}

fn median_of(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let json = event_json();
    let settings = settings();
    let runs = 21;

    let parse_only = median_of(runs, || {
        let event: SqsEvent = serde_json::from_str(black_box(&json)).expect("event parses");
        black_box(event);
    });
    let mut bodies = 0usize;
    let whole = median_of(runs, || {
        let event: SqsEvent = serde_json::from_str(black_box(&json)).expect("event parses");
        let messages: Vec<InboundMessage> = event
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| InboundMessage::from_lambda_record(i, r).expect("ids are set"))
            .collect();
        let prepared = prepare(&messages, NOW, &settings);
        bodies = prepared.requests.iter().map(|(_, c)| c.len()).sum();
        black_box(prepared);
    });

    let per_record = |d: Duration| d.as_secs_f64() * 1e6 / RECORDS as f64;
    println!(
        "event: {RECORDS} records, {} bytes, {bodies} request bodies",
        json.len()
    );
    println!(
        "parse event only:                        {:>8.2} ms  {:>6.2} µs/record",
        parse_only.as_secs_f64() * 1e3,
        per_record(parse_only)
    );
    println!(
        "parse + decode + group + merge + chunk:  {:>8.2} ms  {:>6.2} µs/record",
        whole.as_secs_f64() * 1e3,
        per_record(whole)
    );
    println!(
        "ratio (whole / parse only): {:.2}x   (median of {runs} runs each)",
        whole.as_secs_f64() / parse_only.as_secs_f64()
    );
}
