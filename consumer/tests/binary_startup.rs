//! What an operator reads when the real consumer binary cannot start: one
//! sentence naming what to fix, with its causes and no `Debug` dump, on stderr
//! with a documented exit code, and, under Lambda, through the Runtime API's
//! init-error endpoint. And the binary under an emulator that sends its
//! deadline as a duration (`cargo lambda watch`).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use sfn_mackerel_testkit::local::{api_key_secret, secret_holding};
use sfn_mackerel_testkit::runtime_api::{sqs_event, DeadlineHeader, RuntimeApi};
use support::pipeline::*;
use support::{consumer_command, now};

/// The binary with nothing but these variables (and AWS pointed at moto).
fn command(vars: &[(&str, &str)]) -> Command {
    let mut command = consumer_command();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

/// Runs it to its end (at most 60 s): (exit code, stderr).
async fn run(mut command: Command) -> (i32, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || command.output().expect("the binary runs")),
    )
    .await
    .expect("the binary ended within 60 s")
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `error: …` line the binary ends with.
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in {stderr:?}"))
}

/// Exit code 1 and an `error:` line that starts with `says`, without a dump.
fn assert_could_not_start(code: i32, stderr: &str, says: &str) {
    assert_eq!(code, 1, "{says}: {stderr}");
    let line = error_line(stderr);
    assert!(line.starts_with(says), "expected {says:?}, got {line:?}");
    assert_no_debug_dump(line);
}

fn assert_no_debug_dump(text: &str) {
    for dump in [
        "(NoApiKey",
        "Config(",
        "DispatchFailure(",
        "ServiceError {",
        " { source:",
    ] {
        assert!(!text.contains(dump), "a Debug dump in {text:?}");
    }
}

/// Each way the start fails, as `poll`: (variables, what the sentence says).
fn startup_failures<'a>(
    secret_missing: &'a str,
    secret_unreadable: &'a str,
) -> Vec<(Vec<(&'a str, String)>, &'static str)> {
    vec![
        (
            vec![("MACKEREL_API_KEY", "pasted\nwith a newline".to_owned()), ("DLQ_URL", "u".to_owned())],
            "error: configuration: MACKEREL_API_KEY cannot be used: the key contains a character that cannot be sent in an HTTP header",
        ),
        (
            vec![("MACKEREL_API_KEY_SECRET_ID", secret_unreadable.to_owned()), ("DLQ_URL", "u".to_owned())],
            "error: Mackerel API key: the secret is JSON but has no string field MACKEREL_API_KEY",
        ),
        (vec![("DLQ_URL", "u".to_owned())], "error: configuration: no Mackerel API key configured: set MACKEREL_API_KEY_SECRET_ID"),
        (
            vec![("MACKEREL_API_KEY", "k".to_owned()), ("MACKEREL_API_KEY_SECRET_ID", "s".to_owned()), ("DLQ_URL", "u".to_owned())],
            "error: configuration: both MACKEREL_API_KEY_SECRET_ID and MACKEREL_API_KEY are set",
        ),
        (vec![("MACKEREL_API_KEY", "k".to_owned())], "error: configuration: DLQ_URL is not set"),
        (
            vec![("MACKEREL_API_KEY", "k".to_owned()), ("DLQ_URL", "u".to_owned()), ("MACKEREL_MAX_ATTEMPTS", "many".to_owned())],
            "error: configuration: MACKEREL_MAX_ATTEMPTS=\"many\" is not valid: a whole number from 1 to 20",
        ),
        (
            vec![("MACKEREL_API_KEY_SECRET_ID", secret_missing.to_owned()), ("DLQ_URL", "u".to_owned())],
            "error: Mackerel API key: could not read secret",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_startup_failure_of_the_runner_is_one_sentence_and_exit_code_1() {
    let missing = format!("no-such-secret-{}", now());
    let unreadable = secret_holding(r#"{"other": "x"}"#).await;
    for (vars, says) in startup_failures(&missing, &unreadable) {
        let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push(("QUEUE_URL", "http://127.0.0.1:1/123456789012/results"));
        let (code, stderr) = run({
            let mut command = command(&all);
            command.arg("poll");
            command
        })
        .await;

        assert_could_not_start(code, &stderr, says);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_reached_names_the_call_and_its_causes_on_one_line() {
    let mut unreachable = command(&[
        ("MACKEREL_API_KEY_SECRET_ID", "mackerel/api-key"),
        ("DLQ_URL", "u"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("QUEUE_URL", "http://127.0.0.1:9/123456789012/results"),
    ]);
    unreachable.arg("poll");
    let (code, stderr) = run(unreachable).await;

    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("GetSecretValue failed: dispatch failure"),
        "{line}"
    );
    assert!(line.contains("Connection refused"), "{line}");
    assert_no_debug_dump(line);
}

#[tokio::test]
async fn without_a_command_and_outside_lambda_it_says_what_to_run_and_exits_3() {
    let (code, stderr) = run(command(&[])).await;

    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        error_line(&stderr),
        "error: not running under Lambda (AWS_LAMBDA_RUNTIME_API is unset): to drain a queue locally run `sfn-mackerel-consumer poll --queue-url URL`"
    );
}

fn under_lambda(api: &RuntimeApi, vars: &[(&str, &str)]) -> Command {
    let mut all = vec![
        ("AWS_LAMBDA_RUNTIME_API", api.address()),
        ("AWS_LAMBDA_FUNCTION_NAME", "sfn-mackerel-consumer"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/sfn-mackerel-consumer",
        ),
    ];
    all.extend_from_slice(vars);
    command(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_lambda_each_startup_failure_reaches_the_runtime_apis_init_error() {
    let missing = format!("no-such-secret-{}", now());
    let unreadable = secret_holding(r#"{"other": "x"}"#).await;
    for (vars, says) in startup_failures(&missing, &unreadable) {
        let api = RuntimeApi::start().await;
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();

        let (code, stderr) = run(under_lambda(&api, &vars)).await;

        assert_eq!(code, 1, "{says}: {stderr}");
        assert!(error_line(&stderr).starts_with(says), "{stderr}");
        let reported = api.init_errors();
        assert_eq!(reported.len(), 1, "{says}: {reported:?}");
        let body: serde_json::Value = serde_json::from_str(&reported[0]).unwrap();
        let message = body["errorMessage"].as_str().unwrap();
        assert!(
            says.strip_prefix("error: ")
                .is_some_and(|s| message.starts_with(s)),
            "{message}"
        );
        assert_no_debug_dump(message);
        let error_type = body["errorType"].as_str().unwrap();
        assert!(error_type.starts_with("Runtime."), "{body}");
        assert_eq!(api.init_error_types(), vec![Some(error_type.to_owned())]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_own_startup_failures_are_one_sentence_and_exit_code_1() {
    let queues = queues(30, 5).await;
    let missing_queue = format!("{}-gone", queues.source_url);
    let cases: [(&[&str], &str); 2] = [
        (
            &["--queue-url", &missing_queue],
            "error: could not read the attributes of queue",
        ),
        (
            &[
                "--queue-url",
                &queues.source_url,
                "--batching-window-ms",
                "400000",
            ],
            "error: --batching-window-ms 400000 is above 300000",
        ),
    ];
    for (flags, says) in cases {
        let mut command = command(&[("MACKEREL_API_KEY", "k"), ("DLQ_URL", &queues.dlq_url)]);
        command.arg("poll").args(flags);

        let (code, stderr) = run(command).await;

        assert_could_not_start(code, &stderr, says);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_an_emulator_that_sends_the_time_left_as_its_deadline_messages_are_posted() {
    // cargo lambda watch 1.9.2 sends Lambda-Runtime-Deadline-Ms: 600000.
    let standin = standin(&["ORGANIZATION"]).await;
    let queues = queues(30, 5).await;
    let secret_id = api_key_secret(API_KEY).await;
    let api = RuntimeApi::start().await;
    let base = standin.base_url();
    let mut command = under_lambda(
        &api,
        &[
            ("MACKEREL_API_KEY_SECRET_ID", &secret_id),
            ("MACKEREL_API_BASE", &base),
            ("DLQ_URL", &queues.dlq_url),
            ("RUST_LOG", "warn"),
        ],
    );
    // The function logs to stdout, as Lambda reads it.
    command.stdout(Stdio::piped());
    let child = command.spawn().unwrap();
    let time = now() - 60;
    let body = serde_json::json!({"service": "ORGANIZATION", "name": "prd.glue.job.make_order.seconds", "value": 42, "time": time}).to_string();
    api.invoke_with(
        "watch-1",
        sqs_event(&[("m-1".to_owned(), body)], 0),
        DeadlineHeader::Raw("600000".to_owned()),
    );

    let answer = api.answer_to("watch-1", Duration::from_secs(30)).await;
    // A second invocation: the warning is said once per process.
    let later = serde_json::json!({"service": "ORGANIZATION", "name": "prd.glue.job.make_order.seconds", "value": 43, "time": time + 60}).to_string();
    api.invoke_with(
        "watch-2",
        sqs_event(&[("m-2".to_owned(), later)], 0),
        DeadlineHeader::Raw("600000".to_owned()),
    );
    let second = api.answer_to("watch-2", Duration::from_secs(30)).await;
    let output = {
        let mut child = child;
        let _ = child.kill();
        child.wait_with_output().unwrap()
    };
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let answer = answer.unwrap_or_else(|| panic!("no answer; logs: {logs}"));
    assert_eq!(
        answer.response,
        Some(serde_json::json!({"batchItemFailures": []})),
        "{logs}"
    );
    assert!(
        second.is_some_and(|s| s.response == answer.response),
        "{logs}"
    );
    let points = standin
        .dump()
        .points("ORGANIZATION", "prd.glue.job.make_order.seconds");
    assert_eq!(points.len(), 2);
    assert_eq!(
        logs.matches("cannot be an epoch time").count(),
        1,
        "one warning: {logs}"
    );
}
