//! The handler against a scripted Mackerel-like HTTP server on loopback: how
//! many requests it makes, what it sends, and which messages come back. The
//! values here are not job statuses, whose read and alert requests come on top
//! (`alerting_e2e.rs`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sfn_mackerel_consumer::api_key::{ApiKey, KeyError, KeyFetcher, KeyStore};
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::{Consumer, Fate};
use sfn_mackerel_message::SetAsideReason;
use support::*;

fn one_result(id: &str, service: &str, value: f64) -> sfn_mackerel_consumer::InboundMessage {
    inbound(
        id,
        &result_body(
            service,
            &format!("glue.job.{id}.seconds"),
            value,
            now() - 60,
        ),
    )
}

#[tokio::test]
async fn a_batch_becomes_one_request_per_service() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, dlq) = http_consumer(&server, &[]).await;
    let mut messages: Vec<_> = (0..30)
        .map(|i| {
            one_result(
                &format!("m{i}"),
                if i % 2 == 0 { "svc-a" } else { "svc-b" },
                1.0,
            )
        })
        .collect();
    messages.push(inbound("bad", "{not json"));

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let mut services: Vec<&str> = seen.iter().map(|r| r.service.as_str()).collect();
    services.sort();
    assert_eq!(services, vec!["svc-a", "svc-b"]);
    let posted: usize = seen.iter().map(|r| r.body.as_array().unwrap().len()).sum();
    assert_eq!(posted, 30);
    assert!(report.failed_ids(&messages).is_empty());
    assert_eq!(dlq.parked()[0].0, "bad");
    assert_eq!(dlq.parked()[0].1, SetAsideReason::MalformedJson);
    assert_eq!(report.summary.requests, 2);
}

#[tokio::test]
async fn each_value_is_posted_with_its_original_time() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let time = now() - 3_600;
    let messages = vec![inbound(
        "m",
        &result_body("svc", "glue.job.a.seconds", 312.0, time),
    )];

    consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(
        server.seen()[0].body,
        serde_json::json!([{"name": "glue.job.a.seconds", "time": time, "value": 312.0}])
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_accepted() {
    let server = ScriptedMackerel::start(vec![Answer::status(500), Answer::status(503)]).await;
    let (consumer, dlq) = http_consumer(&server, &[]).await;
    let messages = vec![one_result("m1", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|r| r.body == seen[0].body),
        "every try sends the same payload"
    );
    assert_eq!(report.fates, vec![Fate::Posted]);
    assert_eq!(report.summary.retries, 2);
    assert!(dlq.parked().is_empty());
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_time_asked() {
    let server = ScriptedMackerel::start(vec![Answer::status(429).retry_after("1")]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let messages = vec![one_result("m1", "svc", 1.0)];
    let started = tokio::time::Instant::now();

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(report.fates, vec![Fate::Posted]);
}

#[tokio::test]
async fn a_request_that_times_out_is_retried() {
    let slow = Answer::status(200).delayed(Duration::from_secs(3));
    let server = ScriptedMackerel::start(vec![slow]).await;
    let (consumer, _) = http_consumer(&server, &[("MACKEREL_TIMEOUT_MS", "300")]).await;
    let messages = vec![one_result("m1", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 2);
    assert_eq!(report.fates, vec![Fate::Posted]);
}

#[tokio::test]
async fn unreachable_mackerel_returns_the_messages_to_the_queue() {
    // Port 1 on loopback: nothing listens there, connections are refused at once.
    let settings = settings("http://127.0.0.1:1", &[("MACKEREL_MAX_ATTEMPTS", "3")]);
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(sfn_mackerel_consumer::api_key::FixedKey(
        ApiKey::new("k").unwrap(),
    ))
    .await
    .unwrap();
    let dlq = MemoryDeadLetters::default();
    let consumer = Consumer::new(settings, transport, keys, dlq.clone());
    let messages = vec![one_result("m1", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(report.failed_ids(&messages), vec!["m1"]);
    assert_eq!(report.summary.requests, 3);
    assert!(dlq.parked().is_empty());
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_try_budget() {
    let server = ScriptedMackerel::start(vec![Answer::status(500); 10]).await;
    let (consumer, dlq) = http_consumer(&server, &[("MACKEREL_MAX_ATTEMPTS", "4")]).await;
    let messages = vec![one_result("m1", "svc", 1.0), one_result("m2", "svc", 0.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 4);
    assert_eq!(report.failed_ids(&messages), vec!["m1", "m2"]);
    assert!(dlq.parked().is_empty());
}

#[tokio::test]
async fn retries_stop_before_the_invocation_deadline() {
    let server = ScriptedMackerel::start(vec![Answer::status(503).retry_after("30")]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let messages = vec![one_result("m1", "svc", 1.0)];
    let deadline = deadline_in(Duration::from_secs(2));

    let report = consumer.handle(&messages, deadline).await;

    assert!(
        tokio::time::Instant::now() < deadline,
        "the handler ran past its deadline"
    );
    assert_eq!(server.seen().len(), 1);
    assert_eq!(report.failed_ids(&messages), vec!["m1"]);
}

/// A key source that hands out a new key on every fetch.
struct RotatingKey {
    fetches: Arc<AtomicUsize>,
}

impl KeyFetcher for RotatingKey {
    async fn fetch(&self) -> Result<ApiKey, KeyError> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        ApiKey::new(&format!("key-{n}"))
    }
}

async fn rotating_consumer(
    server: &ScriptedMackerel,
) -> (
    Consumer<HttpTransport, MemoryDeadLetters>,
    MemoryDeadLetters,
    Arc<AtomicUsize>,
) {
    let settings = settings(&server.base_url(), &[]);
    let fetches = Arc::new(AtomicUsize::new(0));
    let keys = KeyStore::load(RotatingKey {
        fetches: fetches.clone(),
    })
    .await
    .unwrap();
    let dlq = MemoryDeadLetters::default();
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    (
        Consumer::new(settings, transport, keys, dlq.clone()),
        dlq,
        fetches,
    )
}

#[tokio::test]
async fn a_refused_key_is_fetched_again_and_the_request_retried_once() {
    let server = ScriptedMackerel::start(vec![Answer::status(401)]).await;
    let (consumer, dlq, fetches) = rotating_consumer(&server).await;
    let messages = vec![one_result("m1", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    let keys: Vec<Option<String>> = server.seen().into_iter().map(|r| r.api_key).collect();
    assert_eq!(keys, vec![Some("key-1".into()), Some("key-2".into())]);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(report.fates, vec![Fate::Posted]);
    assert!(dlq.parked().is_empty());
}

#[tokio::test]
async fn a_key_refused_twice_parks_the_messages_as_forbidden() {
    let server = ScriptedMackerel::start(vec![Answer::status(403), Answer::status(403)]).await;
    let (consumer, dlq, fetches) = rotating_consumer(&server).await;
    let messages = vec![one_result("m1", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 2);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(
        report.fates,
        vec![Fate::Parked(SetAsideReason::MackerelForbidden)]
    );
    assert_eq!(dlq.parked()[0].1, SetAsideReason::MackerelForbidden);
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_its_messages_are_parked() {
    let server = ScriptedMackerel::start(vec![Answer::status(400)]).await;
    let (consumer, dlq) = http_consumer(&server, &[]).await;
    let messages = vec![one_result("m1", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 1);
    assert_eq!(
        report.fates,
        vec![Fate::Parked(SetAsideReason::MackerelRejected)]
    );
    assert_eq!(dlq.parked()[0].0, "m1");
    assert!(report.failed_ids(&messages).is_empty());
}

#[tokio::test]
async fn an_unknown_service_parks_only_its_own_messages() {
    // Services are posted in name order with concurrency 1: "missing" first, then "svc".
    let server = ScriptedMackerel::start(vec![Answer::status(404)]).await;
    let (consumer, dlq) = http_consumer(&server, &[("SERVICE_CONCURRENCY", "1")]).await;
    let messages = vec![
        one_result("m1", "missing", 1.0),
        one_result("m2", "svc", 1.0),
    ];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(
        report.fates,
        vec![Fate::Parked(SetAsideReason::UnknownService), Fate::Posted]
    );
    assert_eq!(dlq.parked().len(), 1);
}

#[tokio::test]
async fn a_message_split_across_a_failed_and_an_accepted_request_comes_back() {
    // 1 KiB bodies: the big message's 40 values need several requests.
    let server = ScriptedMackerel::start(vec![
        Answer::status(200),
        Answer::status(500),
        Answer::status(500),
    ])
    .await;
    let (consumer, _) = http_consumer(
        &server,
        &[
            ("MAX_REQUEST_BYTES", "1024"),
            ("MACKEREL_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;
    let time = now() - 60;
    let metrics: Vec<serde_json::Value> = (0..40)
        .map(|i| serde_json::json!({"name": format!("b.job.{i:02}.seconds"), "value": i}))
        .collect();
    let big = serde_json::json!({"service": "svc", "time": time, "metrics": metrics}).to_string();
    let messages = vec![
        inbound("small", &result_body("svc", "a.job.seconds", 0.0, time)),
        inbound("big", &big),
    ];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert!(server.seen().len() >= 3);
    assert_eq!(report.fates, vec![Fate::Posted, Fate::Failed]);
    assert_eq!(report.failed_ids(&messages), vec!["big"]);
}

#[tokio::test]
async fn a_dlq_that_refuses_turns_parking_into_a_batch_item_failure() {
    let server = ScriptedMackerel::start(vec![]).await;
    let settings = settings(&server.base_url(), &[]);
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(sfn_mackerel_consumer::api_key::FixedKey(
        ApiKey::new("k").unwrap(),
    ))
    .await
    .unwrap();
    let dlq = MemoryDeadLetters {
        refuse: true,
        ..MemoryDeadLetters::default()
    };
    let consumer = Consumer::new(settings, transport, keys, dlq);
    let messages = vec![inbound("bad", "[]"), one_result("good", "svc", 1.0)];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(report.fates, vec![Fate::Failed, Fate::Posted]);
    assert_eq!(report.failed_ids(&messages), vec!["bad"]);
}

#[tokio::test]
async fn the_pipeline_posts_its_own_figures_when_asked() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, _) = http_consumer(&server, &[("PIPELINE_METRICS_SERVICE", "pipeline")]).await;
    let messages = vec![one_result("m1", "svc", 1.0), inbound("bad", "x")];

    consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    let seen = server.seen();
    let own = seen
        .iter()
        .find(|r| r.service == "pipeline")
        .expect("figures posted");
    let names: Vec<&str> = own
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "sfn_mackerel.values_posted",
            "sfn_mackerel.messages_parked",
            "sfn_mackerel.messages_failed",
            "sfn_mackerel.oldest_value_age_seconds"
        ]
    );
    assert_eq!(own.body[1]["value"], 1.0);
}

#[tokio::test]
async fn the_figures_of_one_minute_add_up_so_a_quiet_batch_never_hides_failures() {
    // The first batch's post to "svc" fails twice (two tries): its message fails.
    let server = ScriptedMackerel::start(vec![Answer::status(503), Answer::status(503)]).await;
    let (consumer, _) = http_consumer(
        &server,
        &[
            ("PIPELINE_METRICS_SERVICE", "pipeline"),
            ("MACKEREL_MAX_ATTEMPTS", "2"),
            ("SERVICE_CONCURRENCY", "1"),
        ],
    )
    .await;
    let minute_start = now() / 60 * 60;

    let first = consumer
        .handle_at(
            &[one_result("m1", "svc", 1.0)],
            deadline_in(Duration::from_secs(10)),
            minute_start + 10,
        )
        .await;
    let second = consumer
        .handle_at(
            &[one_result("m2", "svc", 0.0)],
            deadline_in(Duration::from_secs(10)),
            minute_start + 40,
        )
        .await;

    assert_eq!(first.fates, vec![Fate::Failed]);
    assert_eq!(second.fates, vec![Fate::Posted]);
    let figures: Vec<serde_json::Value> = server
        .seen()
        .into_iter()
        .filter(|r| r.service == "pipeline")
        .map(|r| r.body)
        .collect();
    assert_eq!(figures.len(), 2);
    let failed = |body: &serde_json::Value| body[2]["value"].as_f64().unwrap();
    assert_eq!(failed(&figures[0]), 1.0);
    assert_eq!(
        failed(&figures[1]),
        1.0,
        "the minute's later post still counts the earlier failure"
    );
}
