//! The queue runner against moto: SQS hides what the runner holds for as long as
//! it holds it (so a slow Mackerel never makes a second worker post the same
//! messages), and a worker that dies stops the runner with an error instead of
//! leaving a process that polls nothing.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mackerel_standin::FaultConfig;
use sfn_mackerel_consumer::alerting::StatusPoint;
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::delivery::{SeriesRange, Transport};
use sfn_mackerel_consumer::dlq::{DeadLetters, ParkRequest};
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::retry::AttemptResult;
use sfn_mackerel_consumer::runner::{run_queue, RunnerError, RunnerOptions, RunnerTally};
use sfn_mackerel_consumer::Consumer;
use support::now;
use support::pipeline::*;

fn options(queues: &Queues, visibility: u64, idle: u64) -> RunnerOptions {
    RunnerOptions {
        queue_url: queues.source_url.clone(),
        batch_size: 10,
        batching_window: Duration::from_millis(300),
        concurrency: 2,
        visibility_timeout: Some(Duration::from_secs(visibility)),
        exit_when_idle: Some(Duration::from_secs(idle)),
    }
}

async fn run<T: Transport + 'static, D: DeadLetters + 'static>(
    consumer: Consumer<T, D>,
    queues: &Queues,
    options: RunnerOptions,
) -> Result<Arc<RunnerTally>, RunnerError> {
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::time::timeout(
        Duration::from_secs(120),
        run_queue(Arc::new(consumer), queues.sqs.clone(), options, stop),
    )
    .await
    .expect("the runner did not stop within 2 minutes")
}

fn bodies(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            serde_json::json!({"service": "svc", "name": format!("job.{i:02}.failed"), "value": 0, "time": now() - 60})
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_mackerel_never_sees_a_message_twice_when_the_runner_sets_the_visibility() {
    let standin = standin(&["svc"]).await;
    standin
        .set_faults(FaultConfig {
            latency_ms: 8_000,
            ..FaultConfig::default()
        })
        .unwrap();
    // The queue hides a message for 5 s; the runner asks for 60 s.
    let queues = queues(5, 2).await;
    queues.send_all(&bodies(20)).await;

    let tally = run(
        consumer(&standin, &queues, &[("MACKEREL_TIMEOUT_MS", "20000")]).await,
        &queues,
        options(&queues, 60, 4),
    )
    .await
    .unwrap();

    assert_eq!(
        tally.received.load(Ordering::Relaxed),
        20,
        "nothing was received twice"
    );
    assert_eq!(tally.deleted.load(Ordering::Relaxed), 20);
    assert_eq!(
        standin.counters().values_received,
        20 + 20,
        "each job status and its alert point were posted once"
    );
    assert_eq!(
        queues.depth(&queues.dlq_url).await,
        0,
        "nothing was moved to the DLQ"
    );
    assert_eq!(queues.depth(&queues.source_url).await, 0);
}

/// Parks in memory, slowly: longer than the runner's visibility timeout.
#[derive(Clone, Default)]
struct SlowDeadLetters {
    parked: Arc<std::sync::Mutex<Vec<String>>>,
}

impl DeadLetters for SlowDeadLetters {
    async fn park(
        &self,
        requests: &[ParkRequest<'_>],
        _until: tokio::time::Instant,
    ) -> Vec<Result<(), String>> {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let mut parked = self.parked.lock().unwrap();
        requests
            .iter()
            .map(|request| {
                parked.push(request.message.id.clone());
                Ok(())
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_hand_past_its_visibility_timeout_keeps_its_messages_hidden() {
    let standin = standin(&["svc"]).await;
    let queues = queues(4, 5).await;
    queues
        .send_all(&(0..6).map(|i| format!("not json {i}")).collect::<Vec<_>>())
        .await;
    let settings = settings(&standin.base_url(), &queues.dlq_url, &[]);
    let dead_letters = SlowDeadLetters::default();
    let consumer = Consumer::new(
        settings.clone(),
        HttpTransport::new(&settings.api_base).unwrap(),
        KeyStore::load(FixedKey(ApiKey::new(API_KEY).unwrap()))
            .await
            .unwrap(),
        dead_letters.clone(),
    );

    // Hidden for 4 s, parking takes 6 s: only hiding them again keeps them away from the other worker.
    let tally = run(consumer, &queues, options(&queues, 4, 3))
        .await
        .unwrap();

    assert_eq!(
        tally.received.load(Ordering::Relaxed),
        6,
        "nothing was received twice"
    );
    assert_eq!(dead_letters.parked.lock().unwrap().len(), 6);
    assert_eq!(queues.depth(&queues.source_url).await, 0);
}

/// A transport that fails in a way nothing in the consumer should: it panics.
struct PanickingTransport;

impl Transport for PanickingTransport {
    async fn post_tsdb(&self, _: &str, body: &[u8], _: &ApiKey, _: Duration) -> AttemptResult {
        if String::from_utf8_lossy(body).contains("job.00.failed") {
            panic!("scripted failure of a worker");
        }
        AttemptResult::mackerel(200)
    }
    async fn read_series(
        &self,
        _: &str,
        _: &str,
        _: SeriesRange,
        _: &ApiKey,
        _: Duration,
    ) -> Result<Vec<StatusPoint>, String> {
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_stops_the_runner_with_an_error() {
    let queues = queues(30, 5).await;
    queues.send_all(&bodies(1)).await;
    let settings = settings("http://127.0.0.1:9", &queues.dlq_url, &[]);
    let consumer = Consumer::new(
        settings,
        PanickingTransport,
        KeyStore::load(FixedKey(ApiKey::new(API_KEY).unwrap()))
            .await
            .unwrap(),
        support::MemoryDeadLetters::default(),
    );

    let error = run(consumer, &queues, options(&queues, 30, 60))
        .await
        .expect_err("a dead worker must not end the run as a success");

    assert!(
        matches!(&error, RunnerError::WorkerFailed { failed: 1, why } if why.contains("scripted failure")),
        "{error}"
    );
    assert_eq!(
        queues.depth(&queues.source_url).await,
        1,
        "the batch in hand was not deleted: it returns after its visibility timeout"
    );
}

#[tokio::test]
async fn a_batching_window_that_leaves_no_time_to_answer_is_refused_at_start() {
    let queues = queues(10, 5).await;
    let standin = standin(&["svc"]).await;
    let error = run(
        consumer(&standin, &queues, &[]).await,
        &queues,
        RunnerOptions {
            batching_window: Duration::from_secs(8),
            ..options(&queues, 10, 1)
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, RunnerError::WindowTooLong { .. }),
        "{error}"
    );
}
