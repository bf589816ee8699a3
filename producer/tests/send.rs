//! `send` against moto: the body on the queue is exactly the workflow's, invalid
//! bodies are refused unless asked for, and a missing queue or a dead endpoint
//! exits 3 with a sentence saying what to check.

mod support;

use sfn_mackerel_message::timestamp::format_epoch;
use support::*;

#[tokio::test]
async fn a_value_from_flags_arrives_as_the_workflow_would_send_it() {
    let queue = create_queue(&unique("send")).await;
    // A job that finished two minutes ago: derived from the clock, so the value
    // stays inside the 24 hours Mackerel keeps whatever day the test runs.
    let finished = format_epoch(now() - 120);
    let run = cli_moto(&[
        "--json",
        "send",
        "--queue-url",
        &queue,
        "--service",
        "ORG",
        "--name",
        "glue.job.a.failed",
        "--value",
        "1",
        "--time",
        &finished,
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let messages = drain(&queue).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message_id(), report["message_id"].as_str());
    assert_eq!(
        messages[0].body().unwrap(),
        format!(
            r#"{{"service":"ORG","time":"{finished}","metrics":[{{"name":"glue.job.a.failed","value":1.0}}]}}"#
        )
    );
}

#[tokio::test]
async fn a_body_from_stdin_is_sent_unchanged() {
    let queue = create_queue(&unique("send-stdin")).await;
    let body = r#"{"service":"ORG","name":"glue.job.b.duration","value":42}"#;
    let moto = moto_url();
    let run = cli_with_stdin(
        &[
            "--endpoint-url",
            &moto,
            "send",
            "--queue-url",
            &queue,
            "--file",
            "-",
        ],
        Some(body),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("sent message"), "{}", run.stdout);
    assert_eq!(drain(&queue).await[0].body().unwrap(), body);
}

#[tokio::test]
async fn an_invalid_body_is_refused_with_the_consumers_reason_and_nothing_is_sent() {
    let queue = create_queue(&unique("send-invalid")).await;
    let run = cli_moto(&[
        "send",
        "--queue-url",
        &queue,
        "--service",
        "ORG",
        "--name",
        "a b",
        "--value",
        "1",
    ])
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid_metric_name"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-invalid"), "{}", run.stderr);
    assert!(drain(&queue).await.is_empty());
}

#[tokio::test]
async fn allow_invalid_sends_it_anyway_to_test_the_dlq_path() {
    let queue = create_queue(&unique("send-allow")).await;
    let moto = moto_url();
    let run = cli_with_stdin(
        &[
            "--endpoint-url",
            &moto,
            "send",
            "--queue-url",
            &queue,
            "--file",
            "-",
            "--allow-invalid",
        ],
        Some("{\"service\": "),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("malformed_json"), "{}", run.stderr);
    assert_eq!(drain(&queue).await[0].body().unwrap(), "{\"service\":");
}

/// `send` of `glue.job.a.failed = 1` to `queue` on moto, with `flag`.
async fn send_one_value_with(queue: &str, flag: &str) -> Run {
    cli_moto(&[
        "send",
        "--queue-url",
        queue,
        "--service",
        "ORG",
        "--name",
        "glue.job.a.failed",
        "--value",
        "1",
        flag,
    ])
    .await
}

#[tokio::test]
async fn dry_run_validates_without_sending() {
    let queue = create_queue(&unique("send-dry")).await;
    let run = send_one_value_with(&queue, "--dry-run").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dry run"), "{}", run.stdout);
    assert!(drain(&queue).await.is_empty());
}

#[tokio::test]
async fn a_missing_queue_exits_3_and_says_to_check_the_url() {
    let run = cli_moto(&[
        "send",
        "--queue-url",
        &missing_queue(),
        "--service",
        "ORG",
        "--name",
        "a",
        "--value",
        "1",
    ])
    .await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}

/// `send` of one value to an endpoint nothing listens on, with `flags` first.
async fn send_to_a_dead_endpoint(flags: &[&str]) -> (String, Run) {
    let dead = dead_endpoint();
    let queue_url = format!("{dead}/123456789012/q");
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["--endpoint-url", &dead, "send", "--queue-url", &queue_url]);
    args.extend(["--service", "ORG", "--name", "a", "--value", "1"]);
    let run = cli(&args).await;
    (dead, run)
}

#[tokio::test]
async fn an_unreachable_endpoint_exits_3_and_names_it() {
    let (dead, run) = send_to_a_dead_endpoint(&[]).await;
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains(&format!("could not reach SQS at {dead}")),
        "{}",
        run.stderr
    );
    // One readable cause line; the SDK's Debug dump is for -vv.
    assert!(run.stderr.contains("dispatch failure"), "{}", run.stderr);
    for dump in ["DispatchFailure(", "ConnectorError {", "source:"] {
        assert!(!run.stderr.contains(dump), "a Debug dump: {}", run.stderr);
    }
}

#[tokio::test]
async fn with_vv_the_sdks_whole_error_is_logged_too() {
    let (_, run) = send_to_a_dead_endpoint(&["-vv"]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("DispatchFailure("), "{}", run.stderr);
}

#[tokio::test]
async fn errors_are_json_too_in_json_mode() {
    let run = cli_moto(&[
        "--json",
        "send",
        "--queue-url",
        &missing_queue(),
        "--service",
        "ORG",
        "--name",
        "a",
        "--value",
        "1",
    ])
    .await;
    assert_eq!(run.code, 3);
    assert_eq!(run.json()["exit_code"], 3);
}

#[tokio::test]
async fn sqs_event_prints_the_event_lambda_would_hand_the_consumer_and_sends_nothing() {
    let queue = create_queue(&unique("send-event")).await;
    let run = send_one_value_with(&queue, "--sqs-event").await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let event: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is the event alone");
    let record = &event["Records"][0];
    assert_eq!(record["eventSource"], "aws:sqs");
    let body: serde_json::Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["metrics"][0]["name"], "glue.job.a.failed");
    let sent_ms: i64 = record["attributes"]["SentTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (sent_ms / 1000 - now()).abs() < 60,
        "stamped now: {sent_ms}"
    );
    assert!(drain(&queue).await.is_empty(), "--sqs-event sends nothing");
}
