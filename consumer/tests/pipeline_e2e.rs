//! The whole path on loopback: results sent to a moto SQS queue, drained by the
//! local runner (the same handler the Lambda runs) into the Mackerel stand-in,
//! with the DLQ and the queue's redrive policy doing their part.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mackerel_standin::FaultConfig;
use sfn_mackerel_consumer::runner::{run_queue, RunnerOptions, RunnerTally};
use sfn_mackerel_testkit::local::eventually;
use support::now;
use support::pipeline::*;

fn runner_options(queues: &Queues, idle_secs: u64) -> RunnerOptions {
    RunnerOptions {
        queue_url: queues.source_url.clone(),
        batch_size: 100,
        batching_window: Duration::from_millis(300),
        concurrency: 2,
        visibility_timeout: None,
        exit_when_idle: Some(Duration::from_secs(idle_secs)),
    }
}

/// One poller with a long window: everything sent beforehand arrives in one batch.
fn one_batch_options(queues: &Queues) -> RunnerOptions {
    RunnerOptions {
        batching_window: Duration::from_secs(2),
        concurrency: 1,
        ..runner_options(queues, 2)
    }
}

async fn drain(consumer: E2eConsumer, queues: &Queues, idle_secs: u64) -> Arc<RunnerTally> {
    drain_with(consumer, queues, runner_options(queues, idle_secs)).await
}

async fn drain_with(
    consumer: E2eConsumer,
    queues: &Queues,
    options: RunnerOptions,
) -> Arc<RunnerTally> {
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::time::timeout(
        Duration::from_secs(120),
        run_queue(Arc::new(consumer), queues.sqs.clone(), options, stop),
    )
    .await
    .expect("the runner did not go idle within 2 minutes")
    .unwrap()
}

fn value_body(service: &str, name: &str, value: f64, time: i64) -> String {
    serde_json::json!({"service": service, "name": name, "value": value, "time": time}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_arrives_with_its_original_time_in_far_fewer_requests() {
    let services = ["team-a", "team-b", "team-c"];
    let standin = standin(&services).await;
    let queues = queues(30, 5).await;
    let base = (now() / 60 - 100) * 60;
    let mut bodies = Vec::new();
    let mut expected = BTreeSet::new();
    for (s, service) in services.iter().enumerate() {
        for job in 0..10 {
            for execution in 0..10i64 {
                let name = format!("prd.glue.job.job_{job}.seconds");
                let time = base + execution * 600 + 17;
                let value = (s * 1000 + job * 10) as f64 + execution as f64;
                bodies.push(value_body(service, &name, value, time));
                expected.insert((service.to_string(), name, time / 60 * 60, value as i64));
            }
        }
    }
    queues.send_all(&bodies).await;

    let tally = drain(consumer(&standin, &queues, &[]).await, &queues, 2).await;

    let dump = standin.dump();
    let mut stored = BTreeSet::new();
    for service in &dump.services {
        for metric in &service.metrics {
            for point in &metric.points {
                stored.insert((
                    service.name.clone(),
                    metric.name.clone(),
                    point.time,
                    point.value as i64,
                ));
            }
        }
    }
    assert_eq!(stored, expected, "every value, at its own minute");
    let requests = standin.counters().tsdb_requests_total;
    assert!(
        requests * 10 <= bodies.len() as u64,
        "{requests} requests for {} results",
        bodies.len()
    );
    // At least once: a message redelivered on a loaded machine is deleted twice.
    assert!(tally.deleted.load(std::sync::atomic::Ordering::Relaxed) >= bodies.len() as u64);
    assert_eq!(queues.depth(&queues.source_url).await, 0);
    assert!(queues.dlq_contents().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_followed_by_a_success_in_one_batch_opens_the_alert_then_closes_it() {
    let standin = standin(&["ORGANIZATION"]).await;
    let queues = queues(30, 5).await;
    let metric = "prd.glue.job.make_order.failed";
    let monitor = create_job_monitor(&standin, "ORGANIZATION", metric).await;
    let other =
        create_job_monitor(&standin, "ORGANIZATION", "prd.glue.job.make_alarm.failed").await;
    let minute = (now() / 60 - 5) * 60;
    queues
        .send_all(&[
            value_body(
                "ORGANIZATION",
                "prd.glue.job.make_alarm.failed",
                0.0,
                minute,
            ),
            value_body(
                "ORGANIZATION",
                "prd.glue.job.make_alarm.failed",
                0.0,
                minute + 60,
            ),
            // Same minute: the merge keeps the failure.
            value_body("ORGANIZATION", metric, 1.0, minute + 5),
            value_body("ORGANIZATION", metric, 0.0, minute + 50),
            // Next minute: a success, posted in the same request, after the failure.
            value_body("ORGANIZATION", metric, 0.0, minute + 65),
        ])
        .await;

    let tally = drain_with(
        consumer(&standin, &queues, &[]).await,
        &queues,
        one_batch_options(&queues),
    )
    .await;

    assert_eq!(
        tally.batches.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the test needs one batch"
    );
    // The failure opened the alert; the newer success in the same batch closed it.
    let alerts = all_alerts(&standin).await;
    assert_eq!(
        alerts.iter().filter(|(id, _)| *id == monitor).count(),
        1,
        "{alerts:?}"
    );
    assert!(open_alerts(&standin).await.is_empty());
    assert!(!alerts.iter().any(|(id, _)| *id == other), "{alerts:?}");
    let graph = standin.dump().points("ORGANIZATION", metric);
    let values: Vec<f64> = graph.iter().map(|p| p.value).collect();
    assert_eq!(
        values,
        vec![1.0, 0.0],
        "the failure's minute keeps the failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_too_old_messages_end_in_the_dlq_with_their_reasons_and_nothing_else_does() {
    let standin = standin(&["svc"]).await;
    let queues = queues(30, 5).await;
    let good: Vec<String> = (0..20)
        .map(|i| value_body("svc", &format!("job.{i}.failed"), 0.0, now() - 30))
        .collect();
    let too_old = value_body("svc", "job.old.failed", 1.0, now() - 25 * 3600);
    let malformed = "{\"service\": \"svc\", \"name\": ".to_owned();
    let no_such_field = r#"{"service": "svc", "metric": "x", "value": 1}"#.to_owned();
    let mut bodies = good.clone();
    bodies.extend([too_old.clone(), malformed.clone(), no_such_field.clone()]);
    queues.send_all(&bodies).await;

    drain(consumer(&standin, &queues, &[]).await, &queues, 2).await;

    let mut parked = queues.dlq_contents().await;
    parked.sort();
    let mut expected = vec![
        (too_old, Some("too_old".to_owned())),
        (malformed, Some("malformed_json".to_owned())),
        (no_such_field, Some("invalid_message".to_owned())),
    ];
    expected.sort();
    assert_eq!(parked, expected);
    // 20 job statuses and the alert point of each.
    assert_eq!(standin.counters().values_accepted, 20 + 20);
    assert_eq!(queues.depth(&queues.source_url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_mackerel_fails_messages_come_back_and_arrive_once_it_recovers() {
    let standin = standin(&["svc"]).await;
    let queues = queues(2, 10).await;
    standin
        .set_faults(FaultConfig {
            error_500_fraction: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    let bodies: Vec<String> = (0..30)
        .map(|i| value_body("svc", &format!("job.{i}.failed"), 1.0, now() - 30))
        .collect();
    queues.send_all(&bodies).await;
    let recovering = async {
        eventually(
            Duration::from_secs(30),
            "the consumer tried and failed",
            || async {
                standin
                    .counters()
                    .tsdb_requests_by_status
                    .get(&500)
                    .copied()
                    .unwrap_or(0)
                    >= 3
            },
        )
        .await;
        standin.set_faults(FaultConfig::default()).unwrap();
    };

    let consumer = consumer(&standin, &queues, &[("MACKEREL_MAX_ATTEMPTS", "2")]).await;
    let (tally, ()) = tokio::join!(drain(consumer, &queues, 5), recovering);

    // 30 job statuses and the alert point of each.
    assert_eq!(standin.counters().values_accepted, 30 + 30);
    assert!(
        tally
            .left_for_retry
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 30
    );
    assert!(queues.dlq_contents().await.is_empty());
    assert_eq!(queues.depth(&queues.source_url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_mackerel_fails_for_good_the_redrive_policy_parks_the_messages() {
    let standin = standin(&["svc"]).await;
    let queues = queues(1, 2).await;
    standin
        .set_faults(FaultConfig {
            error_503_fraction: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    let bodies: Vec<String> = (0..10)
        .map(|i| value_body("svc", &format!("job.{i}.failed"), 1.0, now() - 30))
        .collect();
    queues.send_all(&bodies).await;

    drain(
        consumer(&standin, &queues, &[("MACKEREL_MAX_ATTEMPTS", "1")]).await,
        &queues,
        4,
    )
    .await;

    let parked = queues.dlq_contents().await;
    let mut parked_bodies: Vec<String> = parked.iter().map(|(b, _)| b.clone()).collect();
    parked_bodies.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(parked_bodies, sent);
    assert!(
        parked.iter().all(|(_, reason)| reason.is_none()),
        "moved by the redrive policy, not by the consumer"
    );
    assert_eq!(standin.counters().values_accepted, 0);
}
