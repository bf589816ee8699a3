//! The consumer and the Mackerel stand-in, in-process, for tests that follow
//! messages past the CLI: the stand-in with a write and a read key, and the
//! consumer's own queue runner draining a queue into it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mackerel_standin::RunningStandIn;
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::dlq::SqsDeadLetters;
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::runner::{run_queue, RunnerOptions};
use sfn_mackerel_consumer::Consumer;

use super::{cli_moto, client, unique};

pub const WRITE_KEY: &str = "write-key";
pub const READ_KEY: &str = "read-key";
pub const SERVICES: [&str; 2] = ["svc-a", "svc-b"];

/// The stand-in with a write key, a read-only key and [`SERVICES`].
pub async fn standin() -> RunningStandIn {
    sfn_mackerel_testkit::local::standin(WRITE_KEY, Some(READ_KEY), &SERVICES).await
}

/// Drains `queue` through the consumer's queue runner until it is idle for 2 s
/// (at most 60 s); returns how many messages it deleted (posted or parked).
pub async fn run_consumer(queue: &str, dlq: &str, mackerel: &str) -> usize {
    run_consumer_with(queue, dlq, mackerel, &[]).await
}

/// As [`run_consumer`], with more consumer settings (`EVENT_SERVICE`, ...).
pub async fn run_consumer_with(
    queue: &str,
    dlq: &str,
    mackerel: &str,
    extra: &[(&str, &str)],
) -> usize {
    let sqs = client().await;
    let vars = [
        ("MACKEREL_API_KEY", WRITE_KEY),
        ("DLQ_URL", dlq),
        ("MACKEREL_API_BASE", mackerel),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let settings = Settings::from_vars(&vars).unwrap();
    let consumer = Consumer::new(
        settings,
        HttpTransport::new(mackerel).unwrap(),
        KeyStore::load(FixedKey(ApiKey::new(WRITE_KEY).unwrap()))
            .await
            .unwrap(),
        SqsDeadLetters {
            client: sqs.clone(),
            queue_url: dlq.to_owned(),
        },
    );
    // The consumer's own queue runner, as the demo and a container would run it.
    let options = RunnerOptions {
        queue_url: queue.to_owned(),
        batch_size: 100,
        batching_window: Duration::from_millis(500),
        concurrency: 1,
        visibility_timeout: Some(Duration::from_secs(30)),
        exit_when_idle: Some(Duration::from_secs(2)),
    };
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let tally = tokio::time::timeout(
        Duration::from_secs(60),
        run_queue(Arc::new(consumer), sqs, options, stop),
    )
    .await
    .expect("the runner did not go idle within 60 s")
    .unwrap();
    tally.deleted.load(Ordering::Relaxed) as usize
}

/// A manifest path of its own in the temporary directory.
pub fn temp_manifest(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}.jsonl", unique(name)))
}

/// `flood`s `count` messages of the load-test shape (two services, three jobs,
/// 30% failures, 5% malformed, 5% too old) into `queue`, writing the manifest at `path`.
pub async fn flood(queue: &str, path: &std::path::Path, count: &str) {
    let run = cli_moto(&[
        "--json",
        "flood",
        "--queue-url",
        queue,
        "--count",
        count,
        "--concurrency",
        "4",
        "--service",
        SERVICES[0],
        "--service",
        SERVICES[1],
        "--jobs",
        "3",
        "--executions",
        "40",
        "--failure-fraction",
        "0.3",
        "--malformed-fraction",
        "0.05",
        "--too-old-fraction",
        "0.05",
        "--spread-minutes",
        "5",
        "--seed",
        "11",
        "--manifest",
        path.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}
