//! The native redrive as SQS sees it. moto has no move task, so these tests
//! run the CLI against a small scripted SQS endpoint on loopback that records
//! the requests it gets: the move task always names its destination (messages
//! the consumer parked went to the DLQ directly, so SQS knows no source queue
//! for them).

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use support::*;

const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:results-dlq";
const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:results";

/// What the scripted endpoint saw: (operation, request body).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

#[derive(Clone)]
struct Endpoint {
    base: String,
    seen: Seen,
}

async fn answer(State(endpoint): State<Endpoint>, headers: HeaderMap, body: String) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("AmazonSQS.")
        .to_owned();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    endpoint
        .seen
        .lock()
        .unwrap()
        .push((operation.clone(), request.clone()));
    let queue_url = request["QueueUrl"].as_str().unwrap_or_default();
    let answer = match operation.as_str() {
        "GetQueueAttributes" => {
            let arn = if queue_url.ends_with("-dlq") {
                DLQ_ARN
            } else {
                SOURCE_ARN
            };
            json!({"Attributes": {"QueueArn": arn, "ApproximateNumberOfMessages": "3",
                   "ApproximateNumberOfMessagesNotVisible": "0", "ApproximateNumberOfMessagesDelayed": "0"}})
        }
        "ListDeadLetterSourceQueues" => {
            json!({"queueUrls": [format!("{}/123456789012/results", endpoint.base)]})
        }
        // The DLQ reads as empty: nothing to check before the move.
        "ReceiveMessage" => json!({}),
        "StartMessageMoveTask" => json!({"TaskHandle": "task-1"}),
        "ListMessageMoveTasks" => json!({"Results": [{
            "TaskHandle": "task-1", "Status": "COMPLETED", "SourceArn": DLQ_ARN,
            "DestinationArn": SOURCE_ARN, "ApproximateNumberOfMessagesMoved": 3,
            "ApproximateNumberOfMessagesToMove": 3, "StartedTimestamp": 1}]}),
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("the scripted endpoint does not answer {other}"),
            )
                .into_response()
        }
    };
    (
        [("content-type", "application/x-amz-json-1.0")],
        answer.to_string(),
    )
        .into_response()
}

async fn scripted_sqs() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = Endpoint {
        base: format!("http://{}", listener.local_addr().unwrap()),
        seen: Seen::default(),
    };
    let app = Router::new()
        .route("/", post(answer))
        .with_state(endpoint.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    endpoint
}

#[tokio::test]
async fn a_native_redrive_always_names_the_queue_the_messages_go_back_to() {
    let sqs = scripted_sqs().await;
    let dlq = format!("{}/123456789012/results-dlq", sqs.base);

    let run = cli(&[
        "--endpoint-url",
        &sqs.base,
        "--json",
        "dlq",
        "redrive",
        "--dlq-url",
        &dlq,
    ])
    .await;

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["method"], "native");
    let seen = sqs.seen.lock().unwrap().clone();
    let (_, start) = seen
        .iter()
        .find(|(operation, _)| operation == "StartMessageMoveTask")
        .expect("a move task was started");
    assert_eq!(start["SourceArn"], DLQ_ARN);
    assert_eq!(
        start["DestinationArn"], SOURCE_ARN,
        "the destination found through ListDeadLetterSourceQueues"
    );
}

#[tokio::test]
async fn an_explicit_destination_is_passed_to_the_move_task() {
    let sqs = scripted_sqs().await;
    let dlq = format!("{}/123456789012/results-dlq", sqs.base);
    let target = format!("{}/123456789012/results", sqs.base);

    let run = cli(&[
        "--endpoint-url",
        &sqs.base,
        "dlq",
        "redrive",
        "--dlq-url",
        &dlq,
        "--to-queue-url",
        &target,
        "--method",
        "native",
    ])
    .await;

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let seen = sqs.seen.lock().unwrap().clone();
    let start = &seen
        .iter()
        .find(|(operation, _)| operation == "StartMessageMoveTask")
        .expect("a move task was started")
        .1;
    assert_eq!(start["DestinationArn"], SOURCE_ARN);
}
