//! The Lambda adapter: an SQS event as Lambda delivers it in, the partial batch
//! response out, naming exactly the messages that must come back.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use sfn_mackerel_consumer::lambda::handle_sqs_event;
use support::*;

fn record(id: Option<&str>, body: &str) -> serde_json::Value {
    let mut record = serde_json::json!({
        "receiptHandle": "handle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": (now() * 1000).to_string(),
            "SenderId": "AROA:states",
            "ApproximateFirstReceiveTimestamp": (now() * 1000).to_string()
        },
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:results",
        "awsRegion": "us-east-1"
    });
    if let Some(id) = id {
        record["messageId"] = id.into();
    }
    record
}

fn event(records: Vec<serde_json::Value>) -> LambdaEvent<SqsEvent> {
    let payload: SqsEvent =
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    let mut context = Context::default();
    let deadline = SystemTime::now() + Duration::from_secs(10);
    context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn only_the_messages_mackerel_did_not_take_are_reported() {
    let server = ScriptedMackerel::start(vec![Answer::status(503); 10]).await;
    let (consumer, dlq) = http_consumer(&server, &[("MACKEREL_MAX_ATTEMPTS", "2")]).await;
    let records = vec![
        record(
            Some("to-retry"),
            &result_body("svc", "a.failed", 1.0, now()),
        ),
        record(Some("malformed"), "{{"),
    ];

    let response = handle_sqs_event(&consumer, event(records)).await.unwrap();

    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "to-retry"}]})
    );
    assert_eq!(dlq.parked()[0].0, "malformed");
}

#[tokio::test]
async fn a_fully_handled_batch_reports_no_failures() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let records = vec![record(
        Some("m"),
        &result_body("svc", "a.failed", 0.0, now()),
    )];

    let response = handle_sqs_event(&consumer, event(records)).await.unwrap();

    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_record_without_a_message_id_fails_the_invocation_so_nothing_is_lost() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let records = vec![
        record(Some("m"), &result_body("svc", "a", 0.0, now())),
        record(None, "{}"),
    ];

    let error = handle_sqs_event(&consumer, event(records))
        .await
        .unwrap_err();

    assert!(error.to_string().contains("no messageId"), "{error}");
    assert!(
        server.seen().is_empty(),
        "nothing is posted from a batch that will come back whole"
    );
}

#[tokio::test]
async fn a_redriven_record_keeps_the_time_it_was_first_sent() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let first_sent = now() - 900;
    let mut redriven = record(
        Some("m1"),
        r#"{"service":"svc","name":"job.failed","value":1}"#,
    );
    redriven["messageAttributes"] = serde_json::json!({
        "SourceSentTimestamp": {"stringValue": (first_sent * 1000).to_string(), "dataType": "String",
                                "stringListValues": [], "binaryListValues": []}
    });

    let response = handle_sqs_event(&consumer, event(vec![redriven]))
        .await
        .unwrap();

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(server.seen()[0].body[0]["time"], first_sent);
}
