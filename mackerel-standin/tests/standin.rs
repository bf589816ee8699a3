//! The stand-in's own features over HTTP: injected faults and limits, counters,
//! dump, reset, the page, the state file and shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{config, now, start, start_with, Client, KEY, SERVICE};
use mackerel_standin::{Config, FaultConfig};
use serde_json::{json, Value};

fn one_value() -> Value {
    json!([{"name": "job.etl.failed", "time": now(), "value": 1}])
}

fn faulted(faults: FaultConfig) -> Config {
    let seed = faults.seed.unwrap_or(7);
    config().with_faults(faults).with_fault_seed(seed)
}

#[tokio::test]
async fn injected_500s_are_answered_in_mackerels_error_shape_and_counted() {
    let (standin, client) = start_with(faulted(FaultConfig {
        error_500_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let response = client.post_tsdb(one_value()).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["error"]["message"].is_string());
    let counters = standin.counters();
    assert_eq!(counters.tsdb_requests_total, 1);
    assert_eq!(counters.tsdb_requests_by_status.get(&500), Some(&1));
    assert!(standin.dump().points(SERVICE, "job.etl.failed").is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn injected_503s_are_answered() {
    let (standin, client) = start_with(faulted(FaultConfig {
        error_503_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    assert_eq!(client.post_tsdb(one_value()).await.status(), 503);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn injected_429s_carry_retry_after_when_configured() {
    let (standin, client) = start_with(faulted(FaultConfig {
        too_many_requests_fraction: 1.0,
        retry_after_fraction: 1.0,
        retry_after_seconds: 3,
        ..FaultConfig::default()
    }))
    .await;
    let response = client.post_tsdb(one_value()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn injected_429s_carry_no_retry_after_unless_configured() {
    let (standin, client) = start_with(faulted(FaultConfig {
        too_many_requests_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let response = client.post_tsdb(one_value()).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    standin.shutdown().await.expect("clean shutdown");
}

async fn status_sequence(seed: u64) -> Vec<u16> {
    let (standin, client) = start_with(faulted(FaultConfig {
        error_503_fraction: 0.5,
        seed: Some(seed),
        ..FaultConfig::default()
    }))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(client.post_tsdb(one_value()).await.status().as_u16());
    }
    standin.shutdown().await.expect("clean shutdown");
    statuses
}

#[tokio::test]
async fn the_same_fault_seed_gives_the_same_faults() {
    let first = status_sequence(42).await;
    assert_eq!(first, status_sequence(42).await);
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn requests_beyond_the_per_key_rate_limit_are_answered_429() {
    let (standin, client) = start_with(faulted(FaultConfig {
        requests_per_minute_per_key: Some(2),
        ..FaultConfig::default()
    }))
    .await;
    assert_eq!(client.post_tsdb(one_value()).await.status(), 200);
    assert_eq!(client.post_tsdb(one_value()).await.status(), 200);
    let limited = client.post_tsdb(one_value()).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_none());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_answered_413() {
    let (standin, client) = start_with(faulted(FaultConfig {
        max_body_bytes: 100,
        ..FaultConfig::default()
    }))
    .await;
    let values: Vec<Value> = (0..10)
        .map(|i| json!({"name": format!("metric.{i}"), "time": now(), "value": i}))
        .collect();
    let response = client.post_tsdb(Value::Array(values)).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        client
            .post_tsdb(json!([{"name": "a", "time": now(), "value": 1}]))
            .await
            .status(),
        200
    );
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn added_latency_delays_the_answer() {
    let (standin, client) = start_with(faulted(FaultConfig {
        latency_ms: 300,
        ..FaultConfig::default()
    }))
    .await;
    let started = Instant::now();
    assert_eq!(client.post_tsdb(one_value()).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_hanging_request_outlasts_the_clients_timeout() {
    let (standin, _) = start_with(faulted(FaultConfig {
        hang_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let impatient = Client::new(&standin.base_url(), Duration::from_millis(300));
    let error = impatient
        .try_post_tsdb(one_value())
        .await
        .expect_err("no answer in time");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(standin.counters().requests_hung, 1);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_held_request_is_answered_504_after_the_hang_limit() {
    let (standin, client) = start_with(faulted(FaultConfig {
        hang_fraction: 1.0,
        hang_max_seconds: 1,
        ..FaultConfig::default()
    }))
    .await;
    assert_eq!(client.post_tsdb(one_value()).await.status(), 504);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_held_request_does_not_block_shutdown() {
    let (standin, client) = start_with(faulted(FaultConfig {
        hang_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let pending = tokio::spawn(async move { client.try_post_tsdb(one_value()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    standin.shutdown().await.expect("clean shutdown");
    assert!(started.elapsed() < Duration::from_secs(3));
    let answer = pending.await.expect("task ends");
    assert!(answer.map(|r| r.status() == 503).unwrap_or(true));
}

#[tokio::test]
async fn the_read_api_is_not_faulted_unless_asked() {
    let (standin, client) = start_with(faulted(FaultConfig {
        error_500_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    assert_eq!(
        client.get("/api/v0/services", Some(KEY)).await.status(),
        200
    );
    standin
        .set_faults(FaultConfig {
            error_500_fraction: 1.0,
            fault_read_api: true,
            ..FaultConfig::default()
        })
        .expect("valid faults");
    assert_eq!(
        client.get("/api/v0/services", Some(KEY)).await.status(),
        500
    );
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn faults_are_read_and_replaced_over_http() {
    let (standin, client) = start().await;
    let put = client
        .http
        .put(format!("{}/_standin/faults", client.base))
        .json(&json!({"error_503_fraction": 1.0}))
        .send()
        .await
        .expect("answered");
    assert_eq!(put.status(), 200);
    let faults: Value = client
        .get("/_standin/faults", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(faults["error_503_fraction"], 1.0);
    assert_eq!(faults["seed"], 7, "the seed in use is kept");
    assert_eq!(client.post_tsdb(one_value()).await.status(), 503);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn invalid_fault_settings_are_refused() {
    let (standin, client) = start().await;
    for body in [
        json!({"error_500_fraction": 2.0}),
        json!({"no_such_fault": 1}),
    ] {
        let put = client
            .http
            .put(format!("{}/_standin/faults", client.base))
            .json(&body)
            .send()
            .await
            .expect("answered");
        assert_eq!(put.status(), 400, "{body}");
    }
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn counters_tell_how_many_tsdb_requests_a_run_made() {
    let (standin, client) = start().await;
    client.post_tsdb(one_value()).await;
    client.post_tsdb(json!([])).await;
    client.get("/api/v0/services", Some(KEY)).await;
    let counters: Value = client
        .get("/_standin/counters", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(counters["tsdb_requests_total"], 2);
    assert_eq!(
        counters["tsdb_requests_by_status"],
        json!({"200": 1, "400": 1})
    );
    assert_eq!(counters["requests_total"], 3);
    assert_eq!(counters["values_accepted"], 1);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_dump_holds_services_points_monitors_and_alerts() {
    let (standin, client) = start().await;
    client
        .create_monitor(
            json!({"type": "service", "name": "failed", "service": SERVICE,
            "metric": "job.etl.failed", "operator": ">", "critical": 0.5, "duration": 1}),
        )
        .await;
    client.post_tsdb(one_value()).await;
    let dump: Value = client
        .get("/_standin/dump", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(dump["services"][0]["name"], SERVICE);
    assert_eq!(dump["services"][0]["metrics"][0]["name"], "job.etl.failed");
    assert_eq!(dump["services"][0]["metrics"][0]["points"][0]["value"], 1.0);
    assert_eq!(dump["monitors"][0]["name"], "failed");
    assert_eq!(dump["alerts"][0]["status"], "CRITICAL");
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn reset_clears_data_and_counters_but_keeps_services_and_faults() {
    let (standin, client) = start_with(faulted(FaultConfig {
        latency_ms: 1,
        ..FaultConfig::default()
    }))
    .await;
    client.post_tsdb(one_value()).await;
    let reset = client
        .http
        .post(format!("{}/_standin/reset", client.base))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("answered");
    assert_eq!(reset.status(), 200);
    let dump = standin.dump();
    assert_eq!(dump.services.len(), 1);
    assert!(dump.services[0].metrics.is_empty());
    assert_eq!(standin.counters().requests_total, 0);
    assert_eq!(standin.faults().latency_ms, 1);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_page_shows_graphs_monitors_and_alerts_and_refreshes_itself() {
    let (standin, client) = start().await;
    client
        .create_monitor(
            json!({"type": "service", "name": "<b>failed</b>", "service": SERVICE,
            "metric": "job.etl.failed", "operator": ">", "critical": 0.5, "duration": 1}),
        )
        .await;
    client.post_tsdb(one_value()).await;
    let response = client.get("/", None).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("text");
    assert!(html.contains("<meta http-equiv=\"refresh\""));
    assert!(html.contains("<svg"));
    assert!(html.contains("job.etl.failed"));
    assert!(
        html.contains("&lt;b&gt;failed&lt;/b&gt;"),
        "monitor names are escaped"
    );
    assert!(html.contains("CRITICAL"));
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_state_file_keeps_data_across_a_restart() {
    let path = std::env::temp_dir().join(format!(
        "mackerel-standin-test-{}-{}.json",
        std::process::id(),
        now()
    ));
    let _ = std::fs::remove_file(&path);
    let (standin, client) = start_with(config().with_state_file(&path)).await;
    client.post_tsdb(one_value()).await;
    standin.shutdown().await.expect("clean shutdown saves");
    let (restarted, _) = start_with(config().with_state_file(&path)).await;
    assert_eq!(restarted.dump().points(SERVICE, "job.etl.failed").len(), 1);
    restarted.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start_with_a_clear_error() {
    let path = std::env::temp_dir().join(format!(
        "mackerel-standin-corrupt-{}-{}.json",
        std::process::id(),
        now()
    ));
    std::fs::write(&path, "not json").expect("temp file written");
    let error = mackerel_standin::StandIn::start(config().with_state_file(&path))
        .await
        .err()
        .expect("start refused");
    assert!(error.to_string().contains("state file"), "{error}");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_config_without_api_keys_is_refused() {
    let error = mackerel_standin::StandIn::start(Config::new().with_service(SERVICE))
        .await
        .err()
        .expect("start refused");
    assert!(error.to_string().contains("--api-key"), "{error}");
}

#[tokio::test]
async fn a_cross_site_form_post_can_neither_reset_nor_fault_the_standin() {
    let (standin, client) = start().await;
    client.post_tsdb(one_value()).await;
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let reset = client
            .http
            .post(format!("{}/_standin/reset", client.base))
            .header("content-type", content_type)
            .body("a=b")
            .send()
            .await
            .expect("answered");
        assert_eq!(reset.status(), 415, "{content_type}");
        let faults = client
            .http
            .put(format!("{}/_standin/faults", client.base))
            .header("content-type", content_type)
            .body(r#"{"error_500_fraction": 1.0}"#)
            .send()
            .await
            .expect("answered");
        assert_eq!(faults.status(), 415, "{content_type}");
    }
    assert_eq!(standin.dump().points(SERVICE, "job.etl.failed").len(), 1);
    assert_eq!(standin.faults().error_500_fraction, 0.0);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_redirect_fault_points_elsewhere_and_stores_nothing() {
    let (standin, client) = start_with(faulted(FaultConfig {
        redirect_fraction: 1.0,
        redirect_location: "http://127.0.0.1:9/elsewhere".into(),
        ..FaultConfig::default()
    }))
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects
        .post(format!("{}/api/v0/services/{SERVICE}/tsdb", client.base))
        .header("x-api-key", KEY)
        .json(&one_value())
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 302);
    assert_eq!(answer.headers()["location"], "http://127.0.0.1:9/elsewhere");
    assert!(standin.dump().points(SERVICE, "job.etl.failed").is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_proxy_page_fault_answers_200_without_mackerels_answer_and_stores_nothing() {
    let (standin, client) = start_with(faulted(FaultConfig {
        not_mackerel_answer_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let answer = client.post_tsdb(one_value()).await;
    assert_eq!(answer.status(), 200);
    assert!(!answer.text().await.unwrap().contains("success"));
    assert!(standin.dump().points(SERVICE, "job.etl.failed").is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_drop_after_store_fault_keeps_the_values_but_gives_no_answer() {
    let (standin, client) = start_with(faulted(FaultConfig {
        drop_after_store_fraction: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let answer = client
        .http
        .post(format!("{}/api/v0/services/{SERVICE}/tsdb", client.base))
        .header("x-api-key", KEY)
        .json(&one_value())
        .send()
        .await;
    let complete = match answer {
        Ok(response) => response.bytes().await.is_ok(),
        Err(_) => false,
    };
    assert!(!complete, "the answer must not arrive whole");
    assert_eq!(standin.dump().points(SERVICE, "job.etl.failed").len(), 1);
    standin.shutdown().await.expect("clean shutdown");
}
