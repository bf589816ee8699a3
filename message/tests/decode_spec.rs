//! What the decoder accepts and why it sets a message aside: the format v1 contract.

use serde_json::json;
use sfn_mackerel_message::events::{EventMapping, ServiceRoute};
use sfn_mackerel_message::{
    decode, decode_record, DecodeContext, Decoded, MetricValue, OutgoingMessage, SetAsideReason,
    TimeWindow,
};

/// 2026-11-29T19:43:43Z
const NOW: i64 = 1_795_981_423;
const SENT_AT: i64 = NOW - 30;

fn context() -> DecodeContext {
    DecodeContext {
        sent_at: Some(SENT_AT),
        window: TimeWindow::around(NOW, 600),
    }
}

fn decoded(body: &str) -> Decoded {
    decode(body, &context()).unwrap_or_else(|rejection| panic!("{body}: {rejection}"))
}

fn reason(body: &str) -> SetAsideReason {
    match decode(body, &context()) {
        Ok(decoded) => panic!("{body} was accepted as {decoded:?}"),
        Err(rejection) => rejection.reason,
    }
}

fn value(name: &str, value: f64, time: i64) -> MetricValue {
    MetricValue {
        name: name.into(),
        value,
        time,
    }
}

#[test]
fn single_value_with_aws_entered_time() {
    let body = r#"{"service": "ORGANIZATION", "name": "prd.glue.job.make_order.failed", "value": 1, "time": "2026-11-29T19:43:43.229Z"}"#;
    assert_eq!(
        decoded(body),
        Decoded {
            service: "ORGANIZATION".into(),
            values: vec![value("prd.glue.job.make_order.failed", 1.0, NOW)],
            event_id: None,
        }
    );
}

#[test]
fn several_values_share_the_message_time() {
    let body = r#"{"service": "ORGANIZATION", "time": "2026-11-29T19:43:43Z",
        "metrics": [{"name": "prd.glue.job.make_order.failed", "value": 0},
                    {"name": "prd.glue.job.make_order.seconds", "value": 312}]}"#;
    assert_eq!(
        decoded(body).values,
        vec![
            value("prd.glue.job.make_order.failed", 0.0, NOW),
            value("prd.glue.job.make_order.seconds", 312.0, NOW),
        ]
    );
}

#[test]
fn a_metric_time_overrides_the_message_time() {
    let body = json!({"service": "svc", "time": NOW, "metrics": [
        {"name": "a", "value": 1, "time": NOW - 120}, {"name": "b", "value": 2}]})
    .to_string();
    let times: Vec<i64> = decoded(&body).values.iter().map(|v| v.time).collect();
    assert_eq!(times, vec![NOW - 120, NOW]);
}

#[test]
fn without_time_the_value_takes_the_sqs_sent_timestamp() {
    let body = r#"{"service": "svc", "name": "a", "value": 1}"#;
    assert_eq!(decoded(body).values[0].time, SENT_AT);
}

#[test]
fn emulator_time_with_microseconds_and_offset() {
    let body = r#"{"service": "svc", "name": "a", "value": 1, "time": "2026-11-29T19:43:43.229000+00:00"}"#;
    assert_eq!(decoded(body).values[0].time, NOW);
}

#[test]
fn legacy_lambda_payload_is_accepted() {
    let body = r#"{"service-name": "ORGANIZATION", "metric-name": "glue.make_order.failed", "metric-value": 1}"#;
    assert_eq!(
        decoded(body),
        Decoded {
            service: "ORGANIZATION".into(),
            values: vec![value("glue.make_order.failed", 1.0, SENT_AT)],
            event_id: None,
        }
    );
}

#[test]
fn unknown_fields_such_as_the_caught_error_are_ignored() {
    let body = json!({"service": "svc", "name": "a.failed", "value": 1, "time": NOW,
        "error": {"Error": "States.TaskFailed", "Cause": "{\"JobRunState\":\"FAILED\"}"}})
    .to_string();
    assert_eq!(decoded(&body).values, vec![value("a.failed", 1.0, NOW)]);
}

#[test]
fn version_1_is_accepted_and_others_are_set_aside() {
    assert_eq!(
        decoded(r#"{"version": 1, "service": "svc", "name": "a", "value": 1}"#)
            .values
            .len(),
        1
    );
    assert_eq!(
        reason(r#"{"version": 2, "service": "svc", "name": "a", "value": 1}"#),
        SetAsideReason::UnsupportedVersion
    );
}

#[test]
fn what_the_cli_encodes_decodes_to_the_same_values() {
    let message = OutgoingMessage::single("svc", "a.b", 2.5, Some("2026-11-29T19:43:43Z".into()));
    assert_eq!(
        decoded(&message.to_body()).values,
        vec![value("a.b", 2.5, NOW)]
    );
}

#[test]
fn not_json_is_malformed() {
    for body in ["", "{", "hello", "{\"service\": }"] {
        assert_eq!(reason(body), SetAsideReason::MalformedJson, "{body}");
    }
}

#[test]
fn json_that_is_not_an_object_is_invalid() {
    for body in ["[]", "1", "\"text\"", "null"] {
        assert_eq!(reason(body), SetAsideReason::InvalidMessage, "{body}");
    }
}

#[test]
fn missing_or_mistyped_fields_are_invalid() {
    for body in [
        r#"{"name": "a", "value": 1}"#,
        r#"{"service": "svc", "value": 1}"#,
        r#"{"service": "svc", "name": "a"}"#,
        r#"{"service": 7, "name": "a", "value": 1}"#,
        r#"{"service": "svc", "name": "a", "value": "1"}"#,
        r#"{"service": "svc", "name": "a", "value": null}"#,
        r#"{"service": "svc", "name": "a", "value": 1, "time": "noon"}"#,
        r#"{"service": "svc", "name": "a", "value": 1, "time": 1.5}"#,
        r#"{"service": "svc", "metrics": []}"#,
        r#"{"service": "svc", "metrics": {"name": "a", "value": 1}}"#,
        r#"{"service": "svc", "metrics": [1]}"#,
        r#"{"service": "svc", "metrics": [{"name": "a"}]}"#,
        r#"{"service": "svc", "name": "a", "value": 1, "metrics": [{"name": "b", "value": 1}]}"#,
        r#"{"service-name": "svc", "metric-name": "a"}"#,
        r#"{"service-name": "svc", "metric-name": "a", "metric-value": 1, "service": "svc"}"#,
    ] {
        assert_eq!(reason(body), SetAsideReason::InvalidMessage, "{body}");
    }
}

#[test]
fn the_detail_names_the_bad_field() {
    let rejection = decode(
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1}, {"name": "b"}]}"#,
        &context(),
    )
    .unwrap_err();
    assert_eq!(rejection.detail, "metrics[1]: \"value\" is missing");
}

#[test]
fn service_names_mackerel_refuses_are_set_aside() {
    for service in ["x", "_svc", "-svc", "has space", "dot.ted"] {
        let body = json!({"service": service, "name": "a", "value": 1}).to_string();
        assert_eq!(
            reason(&body),
            SetAsideReason::InvalidServiceName,
            "{service}"
        );
    }
}

#[test]
fn metric_names_mackerel_refuses_are_set_aside() {
    for name in ["", "a b", "a/b", "job:failed"] {
        let body = json!({"service": "svc", "name": name, "value": 1}).to_string();
        assert_eq!(reason(&body), SetAsideReason::InvalidMetricName, "{name:?}");
    }
}

#[test]
fn one_bad_metric_sets_the_whole_message_aside() {
    let body = json!({"service": "svc", "metrics": [
        {"name": "good", "value": 1}, {"name": "bad name", "value": 1}]})
    .to_string();
    assert_eq!(reason(&body), SetAsideReason::InvalidMetricName);
}

#[test]
fn numbers_beyond_f64_are_non_finite() {
    assert_eq!(
        reason(r#"{"service": "svc", "name": "a", "value": 1e400}"#),
        SetAsideReason::NonFiniteValue
    );
}

#[test]
fn values_older_than_mackerel_keeps_are_too_old() {
    let body =
        json!({"service": "svc", "name": "a", "value": 1, "time": NOW - 24 * 3600 - 1}).to_string();
    assert_eq!(reason(&body), SetAsideReason::TooOld);
}

#[test]
fn values_a_little_in_the_future_are_accepted_beyond_the_allowance_not() {
    let near = json!({"service": "svc", "name": "a", "value": 1, "time": NOW + 600}).to_string();
    let far = json!({"service": "svc", "name": "a", "value": 1, "time": NOW + 601}).to_string();
    assert_eq!(decoded(&near).values[0].time, NOW + 600);
    assert_eq!(reason(&far), SetAsideReason::TooFarInFuture);
}

#[test]
fn epoch_milliseconds_are_too_far_in_the_future() {
    let body = json!({"service": "svc", "name": "a", "value": 1, "time": NOW * 1000}).to_string();
    assert_eq!(reason(&body), SetAsideReason::TooFarInFuture);
}

#[test]
fn reason_codes_round_trip() {
    for reason in SetAsideReason::ALL {
        assert_eq!(SetAsideReason::from_code(reason.code()), Some(reason));
    }
    assert_eq!(SetAsideReason::from_code("nope"), None);
}

#[test]
fn a_body_without_time_takes_the_time_it_was_sent() {
    use sfn_mackerel_message::takes_time_from_sending;
    assert!(takes_time_from_sending(
        r#"{"service": "svc", "name": "a", "value": 1}"#
    ));
    assert!(takes_time_from_sending(
        r#"{"service-name": "svc", "metric-name": "a", "metric-value": 1}"#
    ));
    assert!(
        takes_time_from_sending(
            r#"{"service": "svc", "metrics": [{"name": "a", "value": 1, "time": 1795981400}, {"name": "b", "value": 1}]}"#
        ),
        "one value without a time is enough"
    );
}

#[test]
fn a_body_whose_values_all_carry_a_time_does_not_depend_on_when_it_was_sent() {
    use sfn_mackerel_message::takes_time_from_sending;
    assert!(!takes_time_from_sending(
        r#"{"service": "svc", "name": "a", "value": 1, "time": "2026-11-29T19:43:43Z"}"#
    ));
    assert!(!takes_time_from_sending(
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1, "time": 1795981400}]}"#
    ));
    assert!(
        !takes_time_from_sending("not json"),
        "nothing of it is posted"
    );
}

const GLUE_SAMPLE: &str = include_str!("fixtures/glue-job-state-change.json");

/// AWS's Glue sample with its state changed at `time` (epoch seconds).
fn glue_event_at(time: i64) -> String {
    let mut event: serde_json::Value = serde_json::from_str(GLUE_SAMPLE).unwrap();
    event["time"] = sfn_mackerel_message::timestamp::format_epoch(time).into();
    event.to_string()
}

fn one_service() -> EventMapping {
    EventMapping {
        services: vec![ServiceRoute {
            names: "*".into(),
            service: "svc".into(),
        }],
        ..EventMapping::default()
    }
}

#[test]
fn an_eventbridge_event_decoded_without_the_consumers_mapping_is_not_covered() {
    let rejection = decode(&glue_event_at(NOW), &context()).unwrap_err();
    assert_eq!(rejection.reason, SetAsideReason::EventNotCovered);
    assert!(rejection.detail.contains("EVENT_SERVICE"), "{rejection}");
}

#[test]
fn an_event_is_a_job_result_with_its_id_under_the_same_time_window() {
    let mapped = decode_record(&glue_event_at(NOW - 90), &context(), &one_service()).unwrap();
    assert_eq!(
        mapped.values,
        vec![value("glue.job.MyJob.failed", 1.0, NOW - 90)]
    );
    assert_eq!(
        mapped.event_id.as_deref(),
        Some("abcdef01-1234-5678-9abc-def012345678")
    );
    for (time, reason) in [
        (NOW - 24 * 3600 - 1, SetAsideReason::TooOld),
        (NOW + 601, SetAsideReason::TooFarInFuture),
    ] {
        let rejection = decode_record(&glue_event_at(time), &context(), &one_service());
        assert_eq!(rejection.unwrap_err().reason, reason, "{time}");
    }
}

#[test]
fn a_job_result_message_carries_no_event_id() {
    let body = json!({"service": "svc", "name": "a", "value": 1}).to_string();
    assert_eq!(decoded(&body).event_id, None);
}

#[test]
fn a_job_result_that_carries_an_events_fields_as_context_stays_a_job_result() {
    // A workflow started by an EventBridge rule, forwarding the event it got.
    let body = json!({"service": "svc", "name": "a", "value": 1, "time": NOW as f64,
        "source": "aws.events", "detail-type": "Scheduled Event", "detail": {"x": 1}})
    .to_string();
    assert_eq!(decoded(&body).values, vec![value("a", 1.0, NOW)]);
}
