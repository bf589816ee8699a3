//! Results from AWS's own EventBridge events, with no workflow edited: a Glue
//! Job State Change and a Step Functions Execution Status Change, as the rule
//! delivers them (the whole event is the message body), posted to the Mackerel
//! stand-in under the same names the example workflow's `sendMessage` states
//! use, so the job's monitor alerts whichever path reported the failure.
//! Duplicated events change nothing, events that cannot be mapped are parked
//! in moto's DLQ with their reason, and a redrive after the mapping is fixed
//! posts at the event's time. (moto's EventBridge delivering these bodies from
//! the rule the Terraform writes: terraform/tests/test_events_in_moto.py.)

mod support;

use serde_json::Value;
use sfn_mackerel_consumer::{Fate, InboundMessage};
use sfn_mackerel_message::SetAsideReason;
use sfn_mackerel_testkit::events::{execution_status_change, glue_job_state_change, GLUE_SAMPLE};
use support::pipeline::*;
use support::{inbound, now};

const SERVICE: &str = "ORGANIZATION";
const GLUE_PREFIX: &str = "prd.glue.job";
const WORKFLOW_PREFIX: &str = "prd.sfn.workflow";
const JOB_STATUS: &str = "prd.glue.job.make_order.failed";

/// The consumer's settings for events into one service, as the Terraform
/// module sets them when an event switch is on.
const EVENTS_TO_ONE_SERVICE: [(&str, &str); 3] = [
    ("EVENT_SERVICE", SERVICE),
    ("EVENT_GLUE_PREFIX", GLUE_PREFIX),
    ("EVENT_WORKFLOW_PREFIX", WORKFLOW_PREFIX),
];

/// AWS's Step Functions sample for `machine`, `status`, from `start` to `stop`
/// (epoch ms), with an event id of its own.
fn execution_event(machine: &str, status: &str, start_ms: i64, stop_ms: Option<i64>) -> String {
    let id = format!("{machine}-{status}-{start_ms}");
    execution_status_change(&id, machine, status, start_ms, stop_ms)
}

fn stored(standin: &mackerel_standin::RunningStandIn, name: &str) -> Vec<(i64, f64)> {
    standin
        .dump()
        .points(SERVICE, name)
        .iter()
        .map(|p| (p.time, p.value))
        .collect()
}

/// How many times `monitor` alerted, and whether it is open now.
async fn alert_of(standin: &mackerel_standin::RunningStandIn, monitor: &str) -> (usize, bool) {
    let ours: Vec<(String, String)> = all_alerts(standin)
        .await
        .into_iter()
        .filter(|(id, _)| id == monitor)
        .collect();
    let open = ours.iter().any(|(_, status)| status == "CRITICAL");
    (ours.len(), open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_glue_run_alerts_on_the_jobs_monitor_and_its_next_success_closes_it() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let monitor = create_job_monitor(&standin, SERVICE, JOB_STATUS).await;
    let consumer = consumer(&standin, &queues, &EVENTS_TO_ONE_SERVICE).await;
    let t0 = ten_oclock();

    let failed = glue_job_state_change("e-1", "make_order", "FAILED", t0 + 17);
    assert_eq!(
        handle(&consumer, &[inbound("m-1", &failed)]).await,
        vec![Fate::Posted]
    );
    assert_eq!(stored(&standin, JOB_STATUS), vec![(t0, 1.0)]);
    assert_eq!(alert_of(&standin, &monitor).await, (1, true));

    let succeeded = glue_job_state_change("e-2", "make_order", "SUCCEEDED", t0 + 300);
    handle(&consumer, &[inbound("m-2", &succeeded)]).await;
    assert_eq!(
        stored(&standin, JOB_STATUS),
        vec![(t0, 1.0), (t0 + 300, 0.0)]
    );
    assert_eq!(alert_of(&standin, &monitor).await, (1, false));
    assert!(queues.dlq_contents().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_event_changes_nothing_in_one_batch_or_across_batches() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let monitor = create_job_monitor(&standin, SERVICE, JOB_STATUS).await;
    let workflow = "prd.sfn.workflow.nightly.seconds";
    let consumer = consumer(&standin, &queues, &EVENTS_TO_ONE_SERVICE).await;
    let t0 = ten_oclock();

    let failed = glue_job_state_change("e-1", "make_order", "FAILED", t0 + 5);
    let execution = execution_event(
        "nightly",
        "SUCCEEDED",
        (t0 - 100) * 1000,
        Some((t0 + 20) * 1000 + 500),
    );
    let first = [
        inbound("m-1", &failed),
        inbound("m-2", &failed),
        inbound("m-3", &execution),
    ];
    assert_eq!(handle(&consumer, &first).await, vec![Fate::Posted; 3]);
    // EventBridge delivers the same events again, later.
    let again = [inbound("m-4", &failed), inbound("m-5", &execution)];
    assert_eq!(handle(&consumer, &again).await, vec![Fate::Posted; 2]);

    assert_eq!(stored(&standin, JOB_STATUS), vec![(t0, 1.0)]);
    assert_eq!(stored(&standin, workflow), vec![(t0, 120.5)]);
    assert_eq!(alert_of(&standin, &monitor).await, (1, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_event_under_a_repeated_id_is_posted_not_taken_for_a_copy() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let consumer = consumer(&standin, &queues, &EVENTS_TO_ONE_SERVICE).await;
    let t0 = ten_oclock();

    let make_order = glue_job_state_change("e-1", "make_order", "FAILED", t0 + 5);
    let make_alarm = glue_job_state_change("e-1", "make_alarm", "SUCCEEDED", t0 + 6);
    let batch = [inbound("m-1", &make_order), inbound("m-2", &make_alarm)];
    assert_eq!(handle(&consumer, &batch).await, vec![Fate::Posted; 2]);
    assert_eq!(stored(&standin, JOB_STATUS), vec![(t0, 1.0)]);
    assert_eq!(
        stored(&standin, "prd.glue.job.make_alarm.failed"),
        vec![(t0, 0.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_sum_rule_an_event_delivered_twice_in_a_batch_is_counted_once() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let mut settings = EVENTS_TO_ONE_SERVICE.to_vec();
    settings.push(("MERGE_RULE", "sum"));
    let consumer = consumer(&standin, &queues, &settings).await;
    let t0 = ten_oclock();
    let seconds = "prd.sfn.workflow.nightly.seconds";

    let run = |start: i64, stop: i64| execution_event("nightly", "SUCCEEDED", start, Some(stop));
    // Two runs end in the same minute; EventBridge delivers the first twice.
    let first = run((t0 - 30) * 1000, (t0 + 10) * 1000);
    let second = run((t0 - 5) * 1000, (t0 + 50) * 1000);
    let batch = [
        inbound("m-1", &first),
        inbound("m-2", &second),
        inbound("m-3", &first),
    ];
    assert_eq!(handle(&consumer, &batch).await, vec![Fate::Posted; 3]);
    assert_eq!(stored(&standin, seconds), vec![(t0, 40.0 + 55.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_posts_its_status_and_duration_at_its_stop_time_and_running_posts_nothing() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let consumer = consumer(&standin, &queues, &EVENTS_TO_ONE_SERVICE).await;
    let t0 = ten_oclock();
    let start = (t0 - 40) * 1000;

    let running = execution_event("nightly load", "RUNNING", start, None);
    let timed_out = execution_event("nightly load", "TIMED_OUT", start, Some((t0 + 61) * 1000));
    let messages = [inbound("m-1", &running), inbound("m-2", &timed_out)];
    assert_eq!(handle(&consumer, &messages).await, vec![Fate::Posted; 2]);

    // "nightly load" holds a space, escaped as .20.
    let prefix = "prd.sfn.workflow.nightly.20load";
    assert_eq!(
        stored(&standin, &format!("{prefix}.failed")),
        vec![(t0 + 60, 1.0)]
    );
    assert_eq!(
        stored(&standin, &format!("{prefix}.seconds")),
        vec![(t0 + 60, 101.0)]
    );
    let names: Vec<String> = standin.dump().services[0]
        .metrics
        .iter()
        .map(|metric| metric.name.clone())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "failed, seconds and the status's alert series: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reported_by_its_workflow_and_by_its_event_posts_one_value_and_one_alert() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let monitor = create_job_monitor(&standin, SERVICE, JOB_STATUS).await;
    let consumer = consumer(&standin, &queues, &EVENTS_TO_ONE_SERVICE).await;
    let t0 = ten_oclock();

    let from_workflow = support::result_body(SERVICE, JOB_STATUS, 1.0, t0 + 12);
    let from_event = glue_job_state_change("e-1", "make_order", "FAILED", t0 + 10);
    handle(&consumer, &[inbound("m-1", &from_workflow)]).await;
    handle(&consumer, &[inbound("m-2", &from_event)]).await;

    assert_eq!(stored(&standin, JOB_STATUS), vec![(t0, 1.0)]);
    assert_eq!(alert_of(&standin, &monitor).await, (1, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_cannot_be_mapped_are_parked_with_their_reason_and_the_rest_posted() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let narrow = [
        (
            "EVENT_SERVICES",
            r#"[{"names": "make_*", "service": "ORGANIZATION"}]"#,
        ),
        ("EVENT_GLUE_PREFIX", GLUE_PREFIX),
    ];
    let consumer = consumer(&standin, &queues, &narrow).await;
    let t0 = ten_oclock();

    let mut other_kind: Value = serde_json::from_str(GLUE_SAMPLE).unwrap();
    other_kind["detail-type"] = "Glue Job Run Status".into();
    let mut broken: Value = serde_json::from_str(GLUE_SAMPLE).unwrap();
    broken["detail"]["jobName"] = Value::Null;
    let too_old = glue_job_state_change("e-5", "make_order", "FAILED", now() - 25 * 3600);
    let messages = [
        inbound(
            "m-1",
            &glue_job_state_change("e-1", "make_order", "SUCCEEDED", t0),
        ),
        inbound("m-2", &other_kind.to_string()),
        inbound(
            "m-3",
            &glue_job_state_change("e-3", "make_order", "STARTING", t0),
        ),
        inbound(
            "m-4",
            &glue_job_state_change("e-4", "load_orders", "FAILED", t0),
        ),
        inbound("m-5", &broken.to_string()),
        inbound("m-6", &too_old),
    ];
    let fates = handle(&consumer, &messages).await;
    assert_eq!(
        fates,
        vec![
            Fate::Posted,
            Fate::Parked(SetAsideReason::UnsupportedEvent),
            Fate::Parked(SetAsideReason::UnknownEventState),
            Fate::Parked(SetAsideReason::EventNotCovered),
            Fate::Parked(SetAsideReason::InvalidEvent),
            Fate::Parked(SetAsideReason::TooOld),
        ]
    );
    let mut reasons: Vec<String> = queues
        .dlq_contents()
        .await
        .into_iter()
        .filter_map(|(_, reason)| reason)
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "event_not_covered",
            "invalid_event",
            "too_old",
            "unknown_event_state",
            "unsupported_event"
        ]
    );
    assert_eq!(stored(&standin, JOB_STATUS), vec![(t0, 0.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_parked_before_its_service_was_mapped_posts_at_its_own_time_when_redriven() {
    let standin = standin(&[SERVICE]).await;
    let queues = queues(30, 5).await;
    let monitor = create_job_monitor(&standin, SERVICE, JOB_STATUS).await;
    let t0 = ten_oclock();
    let event = glue_job_state_change("e-1", "make_order", "FAILED", t0 + 30);

    // Deployed without EVENT_SERVICE: the event is parked, not dropped.
    let unmapped = consumer(&standin, &queues, &[("EVENT_GLUE_PREFIX", GLUE_PREFIX)]).await;
    assert_eq!(
        handle(&unmapped, &[inbound("m-1", &event)]).await,
        vec![Fate::Parked(SetAsideReason::EventNotCovered)]
    );
    let parked = queues.dlq_contents().await;
    assert_eq!(parked.len(), 1);

    // Fixed, then redriven: a copy with the first send time, as `dlq redrive`
    // sends it (an event's values keep the event's own time regardless).
    let fixed = consumer(&standin, &queues, &EVENTS_TO_ONE_SERVICE).await;
    let redriven = InboundMessage {
        first_sent_attribute: Some(((t0 + 30) * 1000).to_string()),
        ..inbound("m-2", &parked[0].0)
    };
    assert_eq!(handle(&fixed, &[redriven]).await, vec![Fate::Posted]);
    assert_eq!(stored(&standin, JOB_STATUS), vec![(t0, 1.0)]);
    assert_eq!(alert_of(&standin, &monitor).await, (1, true));
}
