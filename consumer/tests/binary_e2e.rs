//! The real consumer binary, as deployed and as run on a container platform:
//! under a Lambda Runtime API on loopback (key from moto's Secrets Manager), and
//! as the `poll` runner killed with SIGKILL mid-run, or stopped with SIGTERM.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mackerel_standin::FaultConfig;
use sfn_mackerel_testkit::local::{api_key_secret, eventually};
use sfn_mackerel_testkit::runtime_api::{sqs_event, RuntimeApi};
use support::pipeline::*;
use support::{consumer_command, now};

/// Kills the child on drop, so a failing test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn base_command(standin: &str, dlq_url: &str) -> Command {
    let show = || {
        if std::env::var_os("E2E_SHOW_CHILD_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        }
    };
    let mut command = consumer_command();
    command
        .env("MACKEREL_API_BASE", standin)
        .env("DLQ_URL", dlq_url)
        .env("BACKOFF_BASE_MS", "20")
        .env("BACKOFF_CAP_MS", "200")
        .env("RUST_LOG", "info")
        .stdout(show())
        .stderr(show());
    command
}

/// The function's answer to an invocation, within 30 s.
async fn response_for(api: &RuntimeApi, id: &str) -> serde_json::Value {
    let invocation = api
        .answer_to(id, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("the function did not answer {id} within 30 s"));
    assert_eq!(invocation.error, None, "{id} failed");
    invocation.response.expect("answered by /response")
}

fn event(records: &[(&str, String)]) -> String {
    let records: Vec<(String, String)> = records
        .iter()
        .map(|(id, body)| (id.to_string(), body.clone()))
        .collect();
    sqs_event(&records, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_answers_sqs_events_with_partial_batch_responses() {
    let standin = standin(&["ORGANIZATION"]).await;
    let queues = queues(30, 5).await;
    let secret_id = api_key_secret(API_KEY).await;
    let api = RuntimeApi::start().await;
    let _function = Running(
        base_command(&standin.base_url(), &queues.dlq_url)
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "sfn-mackerel-consumer")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/sfn-mackerel-consumer",
            )
            .env("MACKEREL_API_KEY_SECRET_ID", &secret_id)
            .env("MACKEREL_MAX_ATTEMPTS", "2")
            .spawn()
            .unwrap(),
    );
    let time = now() - 60;
    let good = serde_json::json!({"service": "ORGANIZATION", "name": "prd.glue.job.make_order.failed", "value": 1, "time": time}).to_string();
    let unknown =
        serde_json::json!({"service": "NOSUCHSERVICE", "name": "a", "value": 1, "time": time})
            .to_string();
    api.invoke(
        "invocation-1",
        event(&[
            ("good", good),
            ("malformed", "{oops".into()),
            ("unknown", unknown),
        ]),
        Duration::from_secs(15),
    );

    let first = response_for(&api, "invocation-1").await;

    assert_eq!(first, serde_json::json!({"batchItemFailures": []}));
    let points = standin
        .dump()
        .points("ORGANIZATION", "prd.glue.job.make_order.failed");
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].time, points[0].value), (time / 60 * 60, 1.0));
    let mut reasons: Vec<Option<String>> = queues
        .dlq_contents()
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            Some("malformed_json".into()),
            Some("unknown_service".into())
        ]
    );

    standin
        .set_faults(FaultConfig {
            error_503_fraction: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    let retry = serde_json::json!({"service": "ORGANIZATION", "name": "prd.glue.job.make_alarm.failed", "value": 0, "time": time}).to_string();
    api.invoke(
        "invocation-2",
        event(&[("to-retry", retry)]),
        Duration::from_secs(15),
    );

    let second = response_for(&api, "invocation-2").await;

    assert_eq!(
        second,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "to-retry"}]})
    );
    assert!(api.init_errors().is_empty(), "{:?}", api.init_errors());
}

// ---- The poll runner as a process ---------------------------------------------------

fn poll_command(standin: &str, queues: &Queues, extra: &[&str]) -> Command {
    let mut command = base_command(standin, &queues.dlq_url);
    command
        .env("MACKEREL_API_KEY", API_KEY)
        .args([
            "poll",
            "--queue-url",
            &queues.source_url,
            "--batch-size",
            "20",
            "--batching-window-ms",
            "200",
            "--concurrency",
            "1",
        ])
        .args(extra);
    command
}

fn bodies(services: usize, per_service: usize) -> Vec<String> {
    let time = now() - 120;
    (0..services)
        .flat_map(|s| {
            (0..per_service).map(move |j| {
                serde_json::json!({"service": format!("svc-{s:02}"), "name": format!("job.{j:03}.seconds"), "value": j, "time": time})
                    .to_string()
            })
        })
        .collect()
}

/// The stand-in for services svc-00..svc-09, answering each request after 150 ms.
async fn slow_standin_for_ten_services() -> mackerel_standin::RunningStandIn {
    let services: Vec<String> = (0..10).map(|s| format!("svc-{s:02}")).collect();
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let standin = standin(&names).await;
    standin
        .set_faults(FaultConfig {
            latency_ms: 150,
            ..FaultConfig::default()
        })
        .unwrap();
    standin
}

fn stored_values(standin: &mackerel_standin::RunningStandIn) -> usize {
    standin
        .dump()
        .services
        .iter()
        .flat_map(|s| &s.metrics)
        .map(|m| m.points.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_killed_mid_batch_and_restarted_loses_nothing() {
    // Slow answers make sure the kill lands while a batch is in hand.
    let standin = slow_standin_for_ten_services().await;
    let queues = queues(3, 10).await;
    let sent = bodies(10, 30);
    queues.send_all(&sent).await;

    for _ in 0..2 {
        let mut runner = Running(
            poll_command(&standin.base_url(), &queues, &[])
                .spawn()
                .unwrap(),
        );
        let before = standin.counters().tsdb_requests_total;
        eventually(
            Duration::from_secs(60),
            "the runner started posting",
            || {
                let posted = standin.counters().tsdb_requests_total;
                async move { posted >= before + 2 }
            },
        )
        .await;
        runner.0.kill().unwrap(); // SIGKILL
        runner.0.wait().unwrap();
    }
    assert!(
        stored_values(&standin) < sent.len(),
        "the kills came too late to prove anything"
    );

    standin.set_faults(FaultConfig::default()).unwrap();
    let mut last = Running(
        poll_command(
            &standin.base_url(),
            &queues,
            &["--exit-when-idle-secs", "6"],
        )
        .spawn()
        .unwrap(),
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = last.0.wait();
        drop(last);
        status
    })
    .await
    .unwrap()
    .unwrap();

    assert!(status.success());
    assert_eq!(
        stored_values(&standin),
        sent.len(),
        "every value reached Mackerel"
    );
    assert_eq!(queues.depth(&queues.source_url).await, 0);
    assert!(queues.dlq_contents().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batch_in_hand_before_exiting() {
    let standin = slow_standin_for_ten_services().await;
    let queues = queues(30, 10).await;
    queues.send_all(&bodies(10, 30)).await;
    let mut runner = Running(
        poll_command(&standin.base_url(), &queues, &[])
            .spawn()
            .unwrap(),
    );
    eventually(
        Duration::from_secs(60),
        "the runner started posting",
        || {
            let posted = standin.counters().tsdb_requests_total;
            async move { posted >= 1 }
        },
    )
    .await;

    let pid = runner.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || {
        let status = runner.0.wait();
        drop(runner);
        status
    })
    .await
    .unwrap()
    .unwrap();

    assert!(status.success(), "{status:?}");
    let in_flight = queues
        .sqs
        .get_queue_attributes()
        .queue_url(&queues.source_url)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .clone();
    assert_eq!(
        in_flight, "0",
        "the batch in hand was abandoned instead of finished"
    );
    assert!(stored_values(&standin) > 0);
}
