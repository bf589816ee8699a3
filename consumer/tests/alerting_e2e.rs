//! Every delivered failure opens its job's alert, whatever arrived before it:
//! late after a Mackerel 500 and a redelivery, redriven after newer successes,
//! raced by another consumer, or sharing its minute with a success in another
//! batch. Against the Mackerel stand-in, which like Mackerel evaluates a monitor
//! only on a series' newest point, with the job's monitor as Terraform ships it
//! (on `<job>.alert`). Then the alert follows the job's newest run.

mod support;

use std::time::Duration;

use mackerel_standin::FaultConfig;
use sfn_mackerel_consumer::{Consumer, Fate, InboundMessage};
use sfn_mackerel_testkit::doubles::{MemoryDeadLetters, ScriptedTransport};
use support::pipeline::*;
use support::{deadline_in, inbound};

const SERVICE: &str = "ORGANIZATION";
const STATUS: &str = "prd.glue.job.make_order.failed";
const ALERT: &str = "prd.glue.job.make_order.alert";

fn result(id: &str, failed: bool, time: i64) -> InboundMessage {
    let body = serde_json::json!({"service": SERVICE, "name": STATUS, "value": u8::from(failed), "time": time});
    inbound(id, &body.to_string())
}

struct World {
    standin: mackerel_standin::RunningStandIn,
    queues: Queues,
    monitor: String,
}

async fn world() -> World {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let monitor = create_job_monitor(&standin, SERVICE, STATUS).await;
    World {
        standin,
        queues,
        monitor,
    }
}

impl World {
    async fn consumer(&self, extra: &[(&str, &str)]) -> E2eConsumer {
        consumer(&self.standin, &self.queues, extra).await
    }

    /// How many times the job's alert opened, and whether it is open now.
    async fn alert(&self) -> (usize, bool) {
        let alerts = all_alerts(&self.standin).await;
        let ours: Vec<&(String, String)> = alerts
            .iter()
            .filter(|(id, _)| *id == self.monitor)
            .collect();
        let open = ours.iter().any(|(_, status)| status == "CRITICAL");
        (ours.len(), open)
    }

    /// The graph: (minute start, value) of the job's status series.
    fn graph(&self) -> Vec<(i64, f64)> {
        self.standin
            .dump()
            .points(SERVICE, STATUS)
            .iter()
            .map(|p| (p.time, p.value))
            .collect()
    }

    fn fail_posts(&self, failing: bool) {
        let fraction = if failing { 1.0 } else { 0.0 };
        self.standin
            .set_faults(FaultConfig {
                error_500_fraction: fraction,
                ..FaultConfig::default()
            })
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_delivered_after_a_newer_success_opens_the_alert_then_closes_it() {
    let world = world().await;
    let consumer = world.consumer(&[("MACKEREL_MAX_ATTEMPTS", "1")]).await;
    let t0 = ten_oclock();

    // 10:00 fails; its post meets a 500 and the message goes back to the queue.
    world.fail_posts(true);
    assert_eq!(
        handle(&consumer, &[result("m-1000", true, t0)]).await,
        vec![Fate::Failed]
    );
    world.fail_posts(false);
    // Meanwhile the 10:05 run succeeds.
    assert_eq!(
        handle(&consumer, &[result("m-1005", false, t0 + 300)]).await,
        vec![Fate::Posted]
    );
    // The 10:00 failure is delivered again, older than the series' newest point.
    assert_eq!(
        handle(&consumer, &[result("m-1000", true, t0)]).await,
        vec![Fate::Posted]
    );

    assert_eq!(
        world.alert().await,
        (1, false),
        "opened once, closed: 10:05 is newer"
    );
    assert_eq!(world.graph(), vec![(t0, 1.0), (t0 + 300, 0.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_alert_series_that_late_failure_never_alerts() {
    // The problem the alert series solves, on a monitor of the old shape.
    let world = world().await;
    let old_shape = create_status_monitor(&world.standin, SERVICE, STATUS).await;
    let consumer = world.consumer(&[("STATUS_ALERTS", "off")]).await;
    let t0 = ten_oclock();

    handle(&consumer, &[result("m-1005", false, t0 + 300)]).await;
    handle(&consumer, &[result("m-1000", true, t0)]).await;

    let alerts = all_alerts(&world.standin).await;
    assert!(!alerts.iter().any(|(id, _)| *id == old_shape), "{alerts:?}");
    assert_eq!(world.graph(), vec![(t0, 1.0), (t0 + 300, 0.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_of_old_failures_opens_the_alert_and_a_newest_failure_keeps_it_open() {
    let world = world().await;
    let consumer = world.consumer(&[]).await;
    let t0 = ten_oclock();
    handle(
        &consumer,
        &[
            result("m-1", false, t0 + 600),
            result("m-2", false, t0 + 900),
        ],
    )
    .await;

    // Redriven: the same bodies as new messages, older than what Mackerel holds.
    handle(
        &consumer,
        &[
            result("redriven-1", true, t0),
            result("redriven-2", true, t0 + 60),
        ],
    )
    .await;
    assert_eq!(
        world.alert().await,
        (1, false),
        "opened, then closed: 10:15 succeeded"
    );

    // A failure that is the newest run opens it and keeps it open.
    handle(&consumer, &[result("m-3", true, t0 + 1200)]).await;
    assert_eq!(world.alert().await, (2, true));
    // An older success arriving late does not close it.
    handle(&consumer, &[result("late", false, t0 + 1100)]).await;
    assert_eq!(world.alert().await, (2, true));
    // A newer success does.
    handle(&consumer, &[result("m-4", false, t0 + 1500)]).await;
    assert_eq!(world.alert().await, (2, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_racing_still_open_the_alert_for_the_failure() {
    for _ in 0..3 {
        let world = world().await;
        let first = world.consumer(&[]).await;
        let second = world.consumer(&[]).await;
        let t0 = ten_oclock();

        let failure = [result("m-1000", true, t0)];
        let success = [result("m-1005", false, t0 + 300)];
        let (a, b) = tokio::join!(handle(&first, &failure), handle(&second, &success));

        assert_eq!((a, b), (vec![Fate::Posted], vec![Fate::Posted]));
        let (openings, _) = world.alert().await;
        assert!(openings >= 1, "the failure never opened the alert");
        assert_eq!(world.graph(), vec![(t0, 1.0), (t0 + 300, 0.0)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_and_a_success_of_one_minute_in_two_batches_show_the_failure_either_way() {
    for failure_first in [true, false] {
        let world = world().await;
        let consumer = world.consumer(&[]).await;
        let t0 = ten_oclock();
        let failure = result("m-fail", true, t0 + 5);
        let success = result("m-ok", false, t0 + 50);
        let (one, two) = if failure_first {
            (failure, success)
        } else {
            (success, failure)
        };

        handle(&consumer, &[one]).await;
        handle(&consumer, &[two]).await;

        assert_eq!(
            world.graph(),
            vec![(t0, 1.0)],
            "failure first: {failure_first}"
        );
        assert_eq!(
            world.alert().await,
            (1, true),
            "failure first: {failure_first}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_queue_a_failure_that_met_a_500_alerts_once_it_is_redelivered() {
    let world = world().await;
    let t0 = ten_oclock();
    world.fail_posts(true);
    world.queues.send_all(&[result("x", true, t0).body]).await;
    let options = sfn_mackerel_consumer::runner::RunnerOptions {
        queue_url: world.queues.source_url.clone(),
        batch_size: 10,
        batching_window: Duration::from_millis(200),
        concurrency: 1,
        visibility_timeout: Some(Duration::from_secs(2)),
        exit_when_idle: Some(Duration::from_secs(4)),
    };
    let runner = sfn_mackerel_consumer::runner::run_queue(
        std::sync::Arc::new(world.consumer(&[("MACKEREL_MAX_ATTEMPTS", "1")]).await),
        world.queues.sqs.clone(),
        options,
        tokio::sync::watch::channel(false).1,
    );
    let meanwhile = async {
        sfn_mackerel_testkit::local::eventually(
            Duration::from_secs(20),
            "the 500s were met",
            || async {
                world
                    .standin
                    .counters()
                    .tsdb_requests_by_status
                    .get(&500)
                    .copied()
                    .unwrap_or(0)
                    >= 1
            },
        )
        .await;
        world.fail_posts(false);
        // The newer run succeeds through another consumer before the redelivery.
        let other = world.consumer(&[]).await;
        handle(&other, &[result("newer", false, t0 + 300)]).await;
    };
    let (tally, ()) = tokio::join!(
        async {
            tokio::time::timeout(Duration::from_secs(60), runner)
                .await
                .unwrap()
                .unwrap()
        },
        meanwhile
    );

    assert!(
        tally
            .left_for_retry
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    assert_eq!(world.queues.depth(&world.queues.source_url).await, 0);
    assert_eq!(world.alert().await, (1, false));
    assert_eq!(world.graph(), vec![(t0, 1.0), (t0 + 300, 0.0)]);
}

/// The consumer with a Mackerel in memory that stores what it accepts.
async fn scripted(transport: &ScriptedTransport) -> Consumer<ScriptedTransport, MemoryDeadLetters> {
    support::consumer_with_transport(
        support::settings("http://127.0.0.1:9", &[("MACKEREL_MAX_ATTEMPTS", "2")]),
        transport.clone(),
        MemoryDeadLetters::default(),
    )
    .await
}

fn alert_values(transport: &ScriptedTransport) -> Vec<f64> {
    transport
        .stored(SERVICE, ALERT)
        .iter()
        .map(|(_, v)| *v)
        .collect()
}

#[tokio::test]
async fn a_failure_whose_alert_could_not_be_written_comes_back_and_alerts_on_its_redelivery() {
    // The values are stored; both tries of the alert meet a 500.
    let transport = ScriptedTransport::answering(vec![
        sfn_mackerel_consumer::retry::AttemptResult::mackerel(200),
        sfn_mackerel_consumer::retry::AttemptResult::mackerel(500),
        sfn_mackerel_consumer::retry::AttemptResult::mackerel(500),
    ]);
    let consumer = scripted(&transport).await;
    let failure = [result("m-1", true, ten_oclock())];

    let first = consumer
        .handle(&failure, deadline_in(Duration::from_secs(5)))
        .await;
    assert_eq!(first.fates, vec![Fate::Failed]);
    assert!(alert_values(&transport).is_empty());

    let again = consumer
        .handle(&failure, deadline_in(Duration::from_secs(5)))
        .await;
    assert_eq!(again.fates, vec![Fate::Posted]);
    assert_eq!(alert_values(&transport), vec![1.0]);
}

#[tokio::test]
async fn when_the_read_fails_the_failure_still_alerts_and_the_batch_alone_decides() {
    let transport = ScriptedTransport::answering(vec![]);
    transport.fail_reads("HTTP 500: internal");
    let consumer = scripted(&transport).await;
    let t0 = ten_oclock();

    let report = consumer
        .handle(
            &[result("m-1", true, t0), result("m-2", false, t0 + 300)],
            deadline_in(Duration::from_secs(5)),
        )
        .await;

    assert_eq!(report.fates, vec![Fate::Posted, Fate::Posted]);
    assert_eq!(report.summary.failed_status_reads, 1);
    // Opened for the failure, then the newest run of the batch: a success.
    let steps: Vec<String> = transport
        .seen()
        .iter()
        .map(|try_| String::from_utf8_lossy(&try_.body).into_owned())
        .filter(|body| body.contains(ALERT))
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(
        steps[0].contains("\"value\":1.0") && steps[1].contains("\"value\":0.0"),
        "{steps:?}"
    );
}

#[tokio::test]
async fn statuses_cost_one_read_per_job_and_the_alert_one_or_two_requests_per_service() {
    let transport = ScriptedTransport::answering(vec![]);
    let consumer = scripted(&transport).await;
    let t0 = ten_oclock();
    let messages: Vec<InboundMessage> = (0..40)
        .map(|i| {
            let body = serde_json::json!({"service": SERVICE, "name": format!("prd.glue.job.j{}.failed", i % 10), "value": u8::from(i == 7), "time": t0 + i * 10});
            inbound(&format!("m-{i}"), &body.to_string())
        })
        .collect();

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(5)))
        .await;

    assert!(report.failed_ids(&messages).is_empty());
    assert_eq!(report.summary.status_reads, 10, "one read per job");
    // The values, the alerts' first step, and the second for the one job whose
    // failure was followed by a newer success.
    assert_eq!(report.summary.requests, 3);
    assert_eq!(report.summary.alert_values_posted, 10 + 1);
}

#[tokio::test]
async fn an_alert_point_is_stamped_when_its_try_starts_not_when_the_first_did() {
    use sfn_mackerel_consumer::retry::{Answer, AttemptResult};
    let wait = AttemptResult::Answered(Answer {
        status: 429,
        retry_after: Some(Duration::from_secs(2)),
        location: None,
        mackerel_success: false,
        message: String::new(),
    });
    // The values are stored; the alert's first try is asked to wait 2 s.
    let transport = ScriptedTransport::answering(vec![AttemptResult::mackerel(200), wait]);
    let consumer = scripted(&transport).await;

    let report = consumer
        .handle(
            &[result("m-1", true, ten_oclock())],
            deadline_in(Duration::from_secs(10)),
        )
        .await;

    assert_eq!(report.fates, vec![Fate::Posted]);
    let stamps: Vec<i64> = transport
        .seen()
        .iter()
        .filter_map(|try_| {
            let points: Vec<serde_json::Value> = serde_json::from_slice(&try_.body).ok()?;
            points
                .iter()
                .find(|p| p["name"] == ALERT)
                .and_then(|p| p["time"].as_i64())
        })
        .collect();
    assert_eq!(stamps.len(), 2, "{stamps:?}");
    assert!(
        stamps[1] - stamps[0] >= 2,
        "the retry kept the first try's time: {stamps:?}"
    );
}

#[tokio::test]
async fn a_value_sent_under_an_alert_series_name_is_set_aside_with_the_reason() {
    let transport = ScriptedTransport::answering(vec![]);
    let dead_letters = MemoryDeadLetters::default();
    let consumer = support::consumer_with_transport(
        support::settings("http://127.0.0.1:9", &[]),
        transport.clone(),
        dead_letters.clone(),
    )
    .await;
    let body =
        serde_json::json!({"service": SERVICE, "name": ALERT, "value": 0, "time": ten_oclock()});

    let report = consumer
        .handle(
            &[inbound("m-1", &body.to_string())],
            deadline_in(Duration::from_secs(5)),
        )
        .await;

    assert_eq!(
        report.fates,
        vec![Fate::Parked(
            sfn_mackerel_message::SetAsideReason::InvalidMessage
        )]
    );
    assert!(
        dead_letters.details()[0].contains("a name the consumer writes"),
        "{:?}",
        dead_letters.details()
    );
    assert!(transport.seen().is_empty());
}

#[tokio::test]
async fn what_a_read_holds_outside_its_range_or_beyond_a_status_is_not_believed() {
    // A Mackerel that answers a point far ahead of the range asked for, and a 7:
    // the first would pin the newest run for ever, the second would be posted
    // again as a status.
    let t0 = ten_oclock();
    let transport = ScriptedTransport::answering(vec![]);
    transport.answer_reads_with(vec![(t0 + 300, 7.0), (9_000_000_000, 1.0)]);
    let consumer = scripted(&transport).await;

    let report = consumer
        .handle(
            &[result("m-1", false, t0 + 300)],
            deadline_in(Duration::from_secs(5)),
        )
        .await;

    assert_eq!(report.fates, vec![Fate::Posted]);
    // Its minute held a failure (the 7, read as 1): the graph keeps it, and the
    // newest run is that minute's failure, not the point from the year 2255.
    assert_eq!(
        transport.stored(SERVICE, STATUS),
        vec![((t0 + 300) / 60 * 60, 1.0)]
    );
    assert_eq!(alert_values(&transport), vec![1.0]);
}
