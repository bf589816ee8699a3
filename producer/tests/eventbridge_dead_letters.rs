//! Events EventBridge could not deliver to the results queue (a queue policy
//! that refused it, retries over) land in the DLQ with EventBridge's own
//! attributes instead of the consumer's `Reason`: `dlq peek` names them
//! `event_delivery_failed` with EventBridge's error and what the event is, and
//! after the cause is fixed `dlq redrive` hands them to the consumer, which
//! posts them at the event's own time.

mod support;

use aws_sdk_sqs::types::MessageAttributeValue;
use sfn_mackerel_message::dead_letter::eventbridge;
use sfn_mackerel_testkit::events::glue_job_state_change;
use support::pipeline::*;
use support::*;

const JOB_STATUS: &str = "prd.glue.job.make_order.failed";

/// AWS's Glue sample: `make_order` FAILED at `time` (epoch seconds).
fn failed_run_at(time: i64) -> String {
    glue_job_state_change(&unique("event"), "make_order", "FAILED", time)
}

/// Puts `body` in the DLQ as EventBridge sends an event it gave up on.
async fn undelivered(dlq: &str, body: &str) {
    let text = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    let mut send = client()
        .await
        .send_message()
        .queue_url(dlq)
        .message_body(body);
    for (name, value) in [
        (eventbridge::ERROR_CODE, "SQS_PERMISSION_DENIED"),
        (
            eventbridge::ERROR_MESSAGE,
            "Failed to send message to the SQS queue: access denied",
        ),
        (
            eventbridge::RULE_ARN,
            "arn:aws:events:us-east-1:123456789012:rule/sfn-mackerel-glue-job-state",
        ),
        (
            eventbridge::TARGET_ARN,
            "arn:aws:sqs:us-east-1:123456789012:sfn-mackerel-results",
        ),
    ] {
        send = send.message_attributes(name, text(value));
    }
    send.send().await.unwrap();
}

#[tokio::test]
async fn peek_names_an_undelivered_event_by_eventbridges_error_and_says_what_it_is() {
    let (_, dlq) = queue_pair("eb-peek").await;
    undelivered(&dlq, &failed_run_at(now() - 300)).await;

    let run = cli_moto(&["--json", "dlq", "peek", "--dlq-url", &dlq]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let group = &run.json()["reasons"][0];
    assert_eq!(group["reason"], "event_delivery_failed");
    assert_eq!(group["count"], 1);
    assert_eq!(group["redrivable"], true);
    let sample = &group["samples"][0];
    let detail = sample["detail"].as_str().unwrap();
    assert!(
        detail.contains("SQS_PERMISSION_DENIED") && detail.contains("rule/sfn-mackerel-glue"),
        "{detail}"
    );
    let event = sample["event"].as_str().unwrap();
    assert!(
        event.starts_with("Glue Job State Change: make_order FAILED at "),
        "{event}"
    );

    let text = cli_moto(&["dlq", "peek", "--dlq-url", &dlq]).await;
    assert!(
        text.stdout.contains(
            "[event_delivery_failed] EventBridge event, Glue Job State Change: make_order FAILED"
        ),
        "{}",
        text.stdout
    );
    assert_eq!(depth(&dlq).await, 1, "peeking removes nothing");
}

#[tokio::test]
async fn an_undelivered_event_redriven_is_posted_at_the_time_the_job_failed() {
    let (queue, dlq) = queue_pair("eb-redrive").await;
    let mackerel = standin().await;
    let failed_at = now() - 600;
    undelivered(&dlq, &failed_run_at(failed_at)).await;
    // Parked by the consumer for another reason: not part of this redrive.
    park(&dlq, &tagged_body(1), Some("malformed_json")).await;

    let redrive = cli_moto(&[
        "--json",
        "dlq",
        "redrive",
        "--dlq-url",
        &dlq,
        "--reason",
        "event_delivery_failed",
    ])
    .await;
    assert_eq!(redrive.code, 0, "{}", redrive.stderr);
    assert_eq!(redrive.json()["figures"]["moved"], 1);
    let events = [
        ("EVENT_SERVICE", "svc-a"),
        ("EVENT_GLUE_PREFIX", "prd.glue.job"),
    ];
    run_consumer_with(&queue, &dlq, &mackerel.base_url(), &events).await;

    let points = mackerel.dump().points("svc-a", JOB_STATUS);
    let stored: Vec<(i64, f64)> = points.iter().map(|p| (p.time, p.value)).collect();
    assert_eq!(stored, vec![(failed_at / 60 * 60, 1.0)]);
    let left = drain(&dlq).await;
    assert_eq!(left.len(), 1, "only the malformed message stays");
    mackerel.shutdown().await.unwrap();
}

#[tokio::test]
async fn verify_counts_the_events_in_the_dlq_apart_from_the_runs_messages() {
    let (queue, dlq) = queue_pair("eb-verify").await;
    let mackerel = standin().await;
    let path = temp_manifest("eb-verify");
    flood(&queue, &path, "40").await;
    run_consumer(&queue, &dlq, &mackerel.base_url()).await;
    undelivered(&dlq, &failed_run_at(now() - 120)).await;

    let base = mackerel.base_url();
    let manifest = path.to_str().unwrap();
    let args = [
        "verify",
        "--manifest",
        manifest,
        "--dlq-url",
        &dlq,
        "--mackerel-api-base",
        &base,
    ];
    let with_json: Vec<&str> = std::iter::once("--json").chain(args).collect();
    let read_key = [("MACKEREL_API_KEY", READ_KEY)];
    let run = cli_moto_env(&with_json, &read_key).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        report["ok"], true,
        "an event is not one of the run's messages"
    );
    assert_eq!(report["dlq"]["events"]["Glue Job State Change"], 1);
    let text = cli_moto_env(&args, &read_key).await;
    assert!(
        text.stdout.contains(
            "the DLQ also holds EventBridge events, not of this run: 1 Glue Job State Change"
        ),
        "{}",
        text.stdout
    );
    mackerel.shutdown().await.unwrap();
    let _ = std::fs::remove_file(path);
}
