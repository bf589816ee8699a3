//! Parking fits in the invocation: what decoding rejected is parked while the
//! posts run, and a DLQ that does not answer cannot hold the batch past its
//! deadline: a message that could not be parked by then comes back instead.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::config::{Credentials, Region};
use sfn_mackerel_consumer::dlq::{DeadLetters, ParkRequest, SqsDeadLetters};
use sfn_mackerel_consumer::Fate;
use support::*;
use tokio::time::Instant;

/// A TCP server on loopback that accepts connections and never answers.
async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..1_000 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => return,
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_dlq_that_never_answers_cannot_hold_the_batch_past_its_deadline() {
    let server = ScriptedMackerel::start(vec![]).await;
    let endpoint = silent_endpoint().await;
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .build();
    let settings = settings(&server.base_url(), &[("DEADLINE_MARGIN_MS", "1000")]);
    let consumer = consumer_with(
        settings,
        SqsDeadLetters {
            client: aws_sdk_sqs::Client::from_conf(config),
            queue_url: format!("{endpoint}/123456789012/dlq"),
        },
    )
    .await;
    let messages = vec![
        inbound("bad", "not json"),
        inbound("good", &result_body("svc", "job.failed", 0.0, now() - 60)),
    ];
    let started = Instant::now();

    let report = tokio::time::timeout(
        Duration::from_secs(20),
        consumer.handle(&messages, deadline_in(Duration::from_secs(3))),
    )
    .await
    .expect("the batch outlived its deadline waiting for the DLQ");

    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.fates, vec![Fate::Failed, Fate::Posted]);
}

/// Remembers when each park call started.
#[derive(Clone, Default)]
struct TimedDeadLetters {
    parked_at: Arc<Mutex<Vec<Instant>>>,
}

impl DeadLetters for TimedDeadLetters {
    async fn park(&self, requests: &[ParkRequest<'_>], _until: Instant) -> Vec<Result<(), String>> {
        self.parked_at.lock().unwrap().push(Instant::now());
        requests.iter().map(|_| Ok(())).collect()
    }
}

#[tokio::test]
async fn what_decoding_rejected_is_parked_while_the_posts_run() {
    let server =
        ScriptedMackerel::start(vec![Answer::status(200).delayed(Duration::from_secs(2))]).await;
    let settings = settings(&server.base_url(), &[]);
    let dead_letters = TimedDeadLetters::default();
    let consumer = consumer_with(settings, dead_letters.clone()).await;
    let messages = vec![
        inbound("bad", "not json"),
        inbound("good", &result_body("svc", "job.failed", 0.0, now() - 60)),
    ];
    let started = Instant::now();

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(
        report.fates[0],
        Fate::Parked(sfn_mackerel_message::SetAsideReason::MalformedJson)
    );
    let parked_at = dead_letters.parked_at.lock().unwrap().clone();
    assert_eq!(
        parked_at.len(),
        1,
        "one park call, for what decoding rejected"
    );
    assert!(
        parked_at[0] - started < Duration::from_secs(1),
        "parking waited for the post: {:?}",
        parked_at[0] - started
    );
}
