//! `flood` against moto: it sends what it says, writes a manifest `verify` can
//! read, keeps to the target rate, and fails cleanly on a missing queue.

mod support;

use std::time::Instant;

use sfn_mackerel_producer::load_shape::tag_of;
use sfn_mackerel_producer::manifest::{self, Kind};
use support::*;

fn temp_manifest(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}.jsonl", unique(name)))
}

#[tokio::test]
async fn every_message_sent_is_in_the_queue_and_in_the_manifest() {
    let queue = create_queue(&unique("flood")).await;
    let path = temp_manifest("flood");
    let run = cli_moto(&[
        "--json",
        "flood",
        "--queue-url",
        &queue,
        "--count",
        "205",
        "--concurrency",
        "4",
        "--malformed-fraction",
        "0.1",
        "--too-old-fraction",
        "0.1",
        "--seed",
        "7",
        "--manifest",
        path.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["sent"], 205);
    assert_eq!(report["failed_sends"], 0);
    assert_eq!(report["batch_calls"], 21);
    assert!(report["achieved_rate"].as_f64().unwrap() > 0.0);
    assert!(report["latency_ms"]["p99_ms"].as_f64().unwrap() > 0.0);

    let manifest = manifest::read(&path).unwrap();
    assert_eq!(manifest.header.seed, 7);
    assert_eq!(manifest.header.queue_url, queue);
    assert_eq!(manifest.entries.len(), 205);
    assert!(manifest.entries.iter().all(|e| e.sent));
    for kind in [Kind::Valid, Kind::Malformed, Kind::TooOld] {
        assert!(manifest.entries.iter().any(|e| e.kind == kind), "{kind:?}");
    }

    let mut seqs: Vec<u64> = drain(&queue)
        .await
        .iter()
        .map(|m| {
            let (id, seq) = tag_of(m.body().unwrap()).expect("tagged body");
            assert_eq!(id, manifest.header.load_test_id);
            seq
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..205).collect::<Vec<u64>>());
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn the_target_rate_is_kept() {
    let queue = create_queue(&unique("flood-rate")).await;
    let path = temp_manifest("flood-rate");
    let started = Instant::now();
    let run = cli_moto(&[
        "--json",
        "flood",
        "--queue-url",
        &queue,
        "--count",
        "60",
        "--rate",
        "40",
        "--concurrency",
        "8",
        "--manifest",
        path.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // 6 batches of 10 at 40 msg/s: slots at 0, 0.25, ... 1.25 s.
    assert!(
        started.elapsed().as_secs_f64() >= 1.25,
        "{:?}",
        started.elapsed()
    );
    assert!(run.json()["achieved_rate"].as_f64().unwrap() <= 48.0);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn dry_run_shows_samples_and_sends_nothing() {
    let queue = create_queue(&unique("flood-dry")).await;
    let run = cli_moto(&[
        "--json",
        "flood",
        "--queue-url",
        &queue,
        "--count",
        "100",
        "--malformed-fraction",
        "0.5",
        "--dry-run",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["previewed"], 100);
    assert!(report["samples"]["malformed"].is_string());
    assert!(drain(&queue).await.is_empty());
}

#[tokio::test]
async fn a_missing_queue_exits_3_before_writing_a_manifest() {
    let path = temp_manifest("flood-missing");
    let run = cli_moto(&[
        "flood",
        "--queue-url",
        &missing_queue(),
        "--count",
        "10",
        "--manifest",
        path.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!path.exists());
}

#[tokio::test]
async fn an_unreachable_endpoint_exits_3() {
    let dead = dead_endpoint();
    let run = cli(&[
        "--endpoint-url",
        &dead,
        "flood",
        "--queue-url",
        &format!("{dead}/123456789012/q"),
        "--count",
        "10",
    ])
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("could not reach SQS"), "{}", run.stderr);
}
