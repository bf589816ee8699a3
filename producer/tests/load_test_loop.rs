//! The load-test loop, small enough for CI: `flood` fills the queue, the real
//! consumer (in-process) drains it into the Mackerel stand-in and the DLQ, and
//! `verify` finds every value and every parked message. Also verify's failures:
//! missing values exit 1, a bad manifest 2, an unreachable Mackerel 3, and a
//! queue that does not drain in time 1.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use support::pipeline::*;
use support::*;

#[tokio::test]
async fn flood_then_consumer_then_verify_finds_everything() {
    let (queue, dlq) = queue_pair("loop").await;
    let mackerel = standin().await;
    let path = temp_manifest("loop");
    flood(&queue, &path, "400").await;

    assert_eq!(run_consumer(&queue, &dlq, &mackerel.base_url()).await, 400);

    let base = mackerel.base_url();
    let run = cli_moto_env(
        &[
            "--json",
            "verify",
            "--manifest",
            path.to_str().unwrap(),
            "--dlq-url",
            &dlq,
            "--wait-drained",
            "--queue-url",
            &queue,
            "--timeout",
            "10",
            "--mackerel-api-base",
            &base,
        ],
        &[("MACKEREL_API_KEY", READ_KEY)],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["mackerel"]["missing"], 0);
    assert_eq!(report["mackerel"]["mismatched"], 0);
    assert!(report["mackerel"]["found"].as_u64().unwrap() > 0);
    assert!(report["dlq"]["expected"].as_u64().unwrap() > 0);
    assert_eq!(report["dlq"]["found"], report["dlq"]["expected"]);
    assert_eq!(report["drained"]["drained"], true);
    // One read per series (2 services x 3 jobs x 2 metrics), not one per value.
    assert_eq!(report["mackerel"]["reads"], 12);
    assert!(!run.stdout.contains(READ_KEY) && !run.stderr.contains(READ_KEY));
    // verify only looked: the parked messages are still in the DLQ.
    assert_eq!(
        depth(&dlq).await,
        report["dlq"]["expected"].as_u64().unwrap()
    );

    mackerel.shutdown().await.unwrap();
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn values_that_never_reached_mackerel_fail_verify_with_exit_1() {
    let (queue, dlq) = queue_pair("loop-missing").await;
    let path = temp_manifest("loop-missing");
    flood(&queue, &path, "50").await;
    // No consumer ran: nothing reached the stand-in or the DLQ.
    let mackerel = standin().await;
    let base = mackerel.base_url();
    let run = cli_moto_env(
        &[
            "verify",
            "--manifest",
            path.to_str().unwrap(),
            "--dlq-url",
            &dlq,
            "--mackerel-api-base",
            &base,
        ],
        &[("MACKEREL_API_KEY", READ_KEY)],
    )
    .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("RESULT: FAILED"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Mackerel has no such service or metric"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not in the DLQ"), "{}", run.stdout);
    mackerel.shutdown().await.unwrap();
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn wait_drained_gives_up_after_the_timeout_with_exit_1() {
    let (queue, dlq) = queue_pair("loop-stuck").await;
    let path = temp_manifest("loop-stuck");
    flood(&queue, &path, "20").await;
    let mackerel = standin().await;
    let base = mackerel.base_url();
    let run = cli_moto_env(
        &[
            "verify",
            "--manifest",
            path.to_str().unwrap(),
            "--dlq-url",
            &dlq,
            "--wait-drained",
            "--queue-url",
            &queue,
            "--timeout",
            "3",
            "--mackerel-api-base",
            &base,
        ],
        &[("MACKEREL_API_KEY", READ_KEY)],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("queue depth: 20 visible"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("did NOT drain"), "{}", run.stdout);
    mackerel.shutdown().await.unwrap();
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_bad_manifest_exits_2_and_names_the_line() {
    let path = temp_manifest("bad-manifest");
    std::fs::write(
        &path,
        "{\"format\":\"sfn-mackerel-flood-manifest\",\"version\":1,\"load_test_id\":\"lt\",\"created_at\":0,\"queue_url\":\"q\",\"seed\":1}\nnot json\n",
    )
    .unwrap();
    let run = cli_env(
        &["verify", "--manifest", path.to_str().unwrap(), "--skip-dlq"],
        &[("MACKEREL_API_KEY", "k")],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    let missing = cli_env(
        &[
            "verify",
            "--manifest",
            "/nonexistent/run.jsonl",
            "--skip-dlq",
        ],
        &[("MACKEREL_API_KEY", "k")],
    )
    .await;
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn verify_without_a_key_or_a_dlq_says_which_flag_to_pass() {
    let (queue, _) = queue_pair("loop-flags").await;
    let path = temp_manifest("loop-flags");
    flood(&queue, &path, "30").await;
    let no_key = cli(&["verify", "--manifest", path.to_str().unwrap(), "--skip-dlq"]).await;
    assert_eq!(no_key.code, 2);
    assert!(
        no_key.stderr.contains("MACKEREL_API_KEY"),
        "{}",
        no_key.stderr
    );
    let no_dlq = cli_env(
        &["verify", "--manifest", path.to_str().unwrap()],
        &[("MACKEREL_API_KEY", "k")],
    )
    .await;
    assert_eq!(no_dlq.code, 2);
    assert!(no_dlq.stderr.contains("--dlq-url"), "{}", no_dlq.stderr);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn an_unreachable_mackerel_or_a_refused_key_exits_3() {
    let (queue, _) = queue_pair("loop-unreachable").await;
    let path = temp_manifest("loop-unreachable");
    flood(&queue, &path, "30").await;
    let dead = dead_endpoint();
    let run = cli_env(
        &[
            "verify",
            "--manifest",
            path.to_str().unwrap(),
            "--skip-dlq",
            "--mackerel-api-base",
            &dead,
        ],
        &[("MACKEREL_API_KEY", READ_KEY)],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("MACKEREL_API_BASE"), "{}", run.stderr);

    let mackerel = standin().await;
    let base = mackerel.base_url();
    let refused = cli_env(
        &[
            "verify",
            "--manifest",
            path.to_str().unwrap(),
            "--skip-dlq",
            "--mackerel-api-base",
            &base,
        ],
        &[("MACKEREL_API_KEY", "not-a-key")],
    )
    .await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused the API key"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("not-a-key"));
    mackerel.shutdown().await.unwrap();
    let _ = std::fs::remove_file(path);
}

/// A server on loopback answering every request with `status` and `location`,
/// counting the requests it gets.
async fn redirecting_server(location: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        let location = location.clone();
        async move {
            counted.fetch_add(1, Ordering::Relaxed);
            (
                axum::http::StatusCode::FOUND,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, hits)
}

#[tokio::test]
async fn verify_never_follows_a_redirect_with_the_key() {
    let (queue, _) = queue_pair("loop-redirect").await;
    let path = temp_manifest("loop-redirect");
    flood(&queue, &path, "5").await;
    let (elsewhere, elsewhere_hits) = redirecting_server("http://127.0.0.1:9/".into()).await;
    let (base, _) = redirecting_server(format!("{elsewhere}/api/v0/services/svc-a/metrics")).await;

    let run = cli_env(
        &[
            "verify",
            "--manifest",
            path.to_str().unwrap(),
            "--skip-dlq",
            "--mackerel-api-base",
            &base,
        ],
        &[("MACKEREL_API_KEY", READ_KEY)],
    )
    .await;

    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("redirects are never followed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        elsewhere_hits.load(Ordering::Relaxed),
        0,
        "the key went to another host"
    );
    let _ = std::fs::remove_file(path);
}
