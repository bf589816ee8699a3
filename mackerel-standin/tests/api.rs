//! The emulated Mackerel API over HTTP: each rule of mackerel.md, one test each.

mod common;

use common::{error_message, now, start, Client, KEY, READ_ONLY_KEY, SERVICE};
use serde_json::{json, Value};

fn point(name: &str, time: i64, value: f64) -> Value {
    json!({"name": name, "time": time, "value": value})
}

async fn read_points(client: &Client, name: &str) -> reqwest::Response {
    let path = format!(
        "/api/v0/services/{SERVICE}/metrics?name={name}&from={}&to={}",
        now() - 2 * 86_400,
        now() + 2 * 86_400
    );
    client.get(&path, Some(READ_ONLY_KEY)).await
}

#[tokio::test]
async fn a_valid_post_is_answered_success_true_and_stored() {
    let (standin, client) = start().await;
    let t = now();
    let response = client
        .post_tsdb(json!([point("job.etl.failed", t, 1.0)]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"success": true})
    );
    let body: Value = read_points(&client, "job.etl.failed")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        body,
        json!({"metrics": [{"time": t - t % 60, "value": 1.0}]})
    );
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_post_without_an_api_key_is_forbidden() {
    let (standin, client) = start().await;
    let path = format!("/api/v0/services/{SERVICE}/tsdb");
    let response = client
        .post_json(&path, None, &json!([point("m", now(), 1.0)]))
        .await;
    assert_eq!(response.status(), 403);
    assert!(error_message(response).await.contains("X-Api-Key"));
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_post_with_an_unknown_key_is_forbidden() {
    let (standin, client) = start().await;
    let path = format!("/api/v0/services/{SERVICE}/tsdb");
    let response = client
        .post_json(&path, Some("nope"), &json!([point("m", now(), 1.0)]))
        .await;
    assert_eq!(response.status(), 403);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_post_with_a_read_only_key_is_forbidden() {
    let (standin, client) = start().await;
    let path = format!("/api/v0/services/{SERVICE}/tsdb");
    let response = client
        .post_json(&path, Some(READ_ONLY_KEY), &json!([point("m", now(), 1.0)]))
        .await;
    assert_eq!(response.status(), 403);
    assert!(error_message(response).await.contains("read-only"));
    assert!(standin.dump().points(SERVICE, "m").is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_post_to_a_service_that_does_not_exist_is_not_found() {
    let (standin, client) = start().await;
    let response = client
        .post_json(
            "/api/v0/services/NoSuchService/tsdb",
            Some(KEY),
            &json!([point("m", now(), 1.0)]),
        )
        .await;
    assert_eq!(response.status(), 404);
    assert!(error_message(response).await.contains("not found"));
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn one_invalid_element_rejects_the_whole_post_with_400() {
    let (standin, client) = start().await;
    let response = client
        .post_tsdb(json!([
            point("good", now(), 1.0),
            point("bad/name", now(), 1.0)
        ]))
        .await;
    assert_eq!(response.status(), 400);
    assert!(error_message(response).await.contains("element 1"));
    assert!(standin.dump().points(SERVICE, "good").is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_time_in_milliseconds_written_as_a_float_is_rejected() {
    let (standin, client) = start().await;
    let response = client
        .post_tsdb(json!([{"name": "m", "time": 1_732_900_000.5, "value": 1}]))
        .await;
    assert_eq!(response.status(), 400);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_null_value_is_rejected() {
    let (standin, client) = start().await;
    let response = client
        .post_tsdb(json!([{"name": "m", "time": now(), "value": null}]))
        .await;
    assert_eq!(response.status(), 400);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_post_without_a_json_content_type_is_rejected() {
    let (standin, client) = start().await;
    let response = client
        .http
        .post(format!("{}/api/v0/services/{SERVICE}/tsdb", client.base))
        .header("X-Api-Key", KEY)
        .body(json!([point("m", now(), 1.0)]).to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 400);
    assert!(error_message(response).await.contains("Content-Type"));
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn values_older_than_24_hours_are_answered_200_and_silently_dropped() {
    let (standin, client) = start().await;
    let stale = now() - 24 * 3600 - 120;
    let response = client
        .post_tsdb(json!([point("late.metric", stale, 1.0)]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"success": true})
    );
    assert_eq!(read_points(&client, "late.metric").await.status(), 404);
    assert_eq!(standin.counters().values_dropped_too_old, 1);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn only_the_stale_values_of_a_mixed_post_are_dropped() {
    let (standin, client) = start().await;
    let t = now();
    let response = client
        .post_tsdb(json!([point("m", t - 25 * 3600, 9.0), point("m", t, 1.0)]))
        .await;
    assert_eq!(response.status(), 200);
    let points = standin.dump().points(SERVICE, "m");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].value, 1.0);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn values_more_than_24_hours_ahead_are_answered_200_and_dropped() {
    let (standin, client) = start().await;
    let response = client
        .post_tsdb(json!([point("m", now() + 25 * 3600, 1.0)]))
        .await;
    assert_eq!(response.status(), 200);
    assert!(standin.dump().points(SERVICE, "m").is_empty());
    assert_eq!(standin.counters().values_dropped_too_far_in_future, 1);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_later_write_in_the_same_minute_overwrites_the_earlier_one() {
    let (standin, client) = start().await;
    let t = now();
    let minute = t - t % 60;
    assert_eq!(
        client
            .post_tsdb(json!([point("m", minute + 5, 1.0)]))
            .await
            .status(),
        200
    );
    assert_eq!(
        client
            .post_tsdb(json!([point("m", minute + 50, 0.0)]))
            .await
            .status(),
        200
    );
    let body: Value = read_points(&client, "m").await.json().await.expect("JSON");
    assert_eq!(body, json!({"metrics": [{"time": minute, "value": 0.0}]}));
    assert_eq!(standin.counters().values_overwritten, 1);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn services_are_listed_with_name_memo_and_roles() {
    let (standin, client) = start().await;
    let body = client.get_json("/api/v0/services").await;
    assert_eq!(
        body,
        json!({"services": [{"name": SERVICE, "memo": "", "roles": []}]})
    );
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_created_service_accepts_posts() {
    let (standin, client) = start().await;
    let created = client
        .post_json(
            "/api/v0/services",
            Some(KEY),
            &json!({"name": "batch-jobs", "memo": "demo"}),
        )
        .await;
    assert_eq!(created.status(), 200);
    assert_eq!(
        created.json::<Value>().await.expect("JSON"),
        json!({"name": "batch-jobs", "memo": "demo", "roles": []})
    );
    let posted = client
        .post_json(
            "/api/v0/services/batch-jobs/tsdb",
            Some(KEY),
            &json!([point("m", now(), 1.0)]),
        )
        .await;
    assert_eq!(posted.status(), 200);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn creating_an_existing_or_badly_named_service_is_rejected() {
    let (standin, client) = start().await;
    let again = client
        .post_json("/api/v0/services", Some(KEY), &json!({"name": SERVICE}))
        .await;
    assert_eq!(again.status(), 400);
    let bad = client
        .post_json("/api/v0/services", Some(KEY), &json!({"name": "_x"}))
        .await;
    assert_eq!(bad.status(), 400);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn metric_names_lists_every_posted_name() {
    let (standin, client) = start().await;
    client
        .post_tsdb(json!([
            point("b.metric", now(), 1.0),
            point("a.metric", now(), 1.0)
        ]))
        .await;
    let body = client
        .get_json(&format!("/api/v0/services/{SERVICE}/metric-names"))
        .await;
    assert_eq!(body, json!({"names": ["a.metric", "b.metric"]}));
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn metrics_are_read_within_from_and_to_oldest_first() {
    let (standin, client) = start().await;
    let t = now();
    let minute = t - t % 60;
    client
        .post_tsdb(json!([
            point("m", minute, 3.0),
            point("m", minute - 120, 1.0),
            point("m", minute - 60, 2.0)
        ]))
        .await;
    let body = client
        .get_json(&format!(
            "/api/v0/services/{SERVICE}/metrics?name=m&from={}&to={}",
            minute - 60,
            minute
        ))
        .await;
    assert_eq!(
        body,
        json!({"metrics": [{"time": minute - 60, "value": 2.0}, {"time": minute, "value": 3.0}]})
    );
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn reading_an_unknown_metric_or_service_is_not_found() {
    let (standin, client) = start().await;
    let metric = client
        .get(
            &format!("/api/v0/services/{SERVICE}/metrics?name=none&from=0&to=10"),
            Some(KEY),
        )
        .await;
    assert_eq!(metric.status(), 404);
    let service = client
        .get(
            "/api/v0/services/Nope/metrics?name=none&from=0&to=10",
            Some(KEY),
        )
        .await;
    assert_eq!(service.status(), 404);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn reading_metrics_without_from_and_to_is_rejected() {
    let (standin, client) = start().await;
    let response = client
        .get(
            &format!("/api/v0/services/{SERVICE}/metrics?name=m"),
            Some(KEY),
        )
        .await;
    assert_eq!(response.status(), 400);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn reading_needs_a_known_key() {
    let (standin, client) = start().await;
    assert_eq!(client.get("/api/v0/services", None).await.status(), 403);
    assert_eq!(
        client.get("/api/v0/services", Some("nope")).await.status(),
        403
    );
    assert_eq!(
        client
            .get("/api/v0/services", Some(READ_ONLY_KEY))
            .await
            .status(),
        200
    );
    standin.shutdown().await.expect("clean shutdown");
}

fn failure_monitor(duration: u32) -> Value {
    json!({
        "type": "service",
        "name": "etl job failed",
        "service": SERVICE,
        "metric": "job.etl.failed",
        "operator": ">",
        "warning": null,
        "critical": 0.5,
        "duration": duration
    })
}

#[tokio::test]
async fn a_created_monitor_gets_an_id_and_is_listed() {
    let (standin, client) = start().await;
    let monitor = client.create_monitor(failure_monitor(1)).await;
    let id = monitor["id"].as_str().expect("id").to_owned();
    assert_eq!(monitor["type"], "service");
    assert_eq!(monitor["maxCheckAttempts"], 1);
    let listed = client.get_json("/api/v0/monitors").await;
    assert_eq!(listed["monitors"][0]["id"], id.as_str());
    let one = client.get_json(&format!("/api/v0/monitors/{id}")).await;
    assert_eq!(one["monitor"]["name"], "etl job failed");
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_monitor_for_a_service_that_does_not_exist_is_rejected() {
    let (standin, client) = start().await;
    let mut monitor = failure_monitor(1);
    monitor["service"] = json!("Nope");
    let response = client
        .post_json("/api/v0/monitors", Some(KEY), &monitor)
        .await;
    assert_eq!(response.status(), 400);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_failed_job_raises_a_critical_alert() {
    let (standin, client) = start().await;
    let monitor = client.create_monitor(failure_monitor(1)).await;
    client
        .post_tsdb(json!([point("job.etl.failed", now(), 1.0)]))
        .await;
    let alerts = client.open_alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "CRITICAL");
    assert_eq!(alerts[0]["monitorId"], monitor["id"]);
    assert_eq!(alerts[0]["type"], "service");
    assert_eq!(alerts[0]["value"], 1.0);
    assert!(alerts[0]["openedAt"].as_i64().is_some());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_success_after_a_failure_closes_the_alert() {
    let (standin, client) = start().await;
    client.create_monitor(failure_monitor(1)).await;
    let t = now();
    client
        .post_tsdb(json!([point("job.etl.failed", t - 60, 1.0)]))
        .await;
    client
        .post_tsdb(json!([point("job.etl.failed", t, 0.0)]))
        .await;
    assert!(client.open_alerts().await.is_empty());
    let all = client.get_json("/api/v0/alerts?withClosed=true").await;
    assert_eq!(all["alerts"][0]["status"], "OK");
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_failure_followed_by_a_newer_success_in_one_post_does_not_alert() {
    let (standin, client) = start().await;
    client.create_monitor(failure_monitor(1)).await;
    let t = now();
    client
        .post_tsdb(json!([
            point("job.etl.failed", t - 60, 1.0),
            point("job.etl.failed", t, 0.0)
        ]))
        .await;
    assert!(client.open_alerts().await.is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_duration_of_two_points_catches_the_failure_hidden_by_a_newer_success() {
    let (standin, client) = start().await;
    let mut monitor = failure_monitor(2);
    monitor["critical"] = json!(0.4);
    client.create_monitor(monitor).await;
    let t = now();
    client
        .post_tsdb(json!([
            point("job.etl.failed", t - 60, 1.0),
            point("job.etl.failed", t, 0.0)
        ]))
        .await;
    let alerts = client.open_alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["value"], 0.5);
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_late_value_older_than_the_latest_point_is_not_evaluated() {
    let (standin, client) = start().await;
    client.create_monitor(failure_monitor(1)).await;
    let t = now();
    client
        .post_tsdb(json!([point("job.etl.failed", t, 0.0)]))
        .await;
    client
        .post_tsdb(json!([point("job.etl.failed", t - 600, 1.0)]))
        .await;
    assert!(client.open_alerts().await.is_empty());
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn data_that_stops_arriving_raises_an_interruption_alert() {
    let (standin, client) = start().await;
    client
        .create_monitor(json!({
            "type": "service",
            "name": "etl results stopped",
            "service": SERVICE,
            "metric": "job.etl.failed",
            "operator": ">",
            "duration": 1,
            "missingDurationCritical": 10
        }))
        .await;
    client
        .post_tsdb(json!([point("job.etl.failed", now() - 15 * 60, 0.0)]))
        .await;
    let alerts = client.open_alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "CRITICAL");
    standin.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_api_path_that_is_not_emulated_is_answered_404_in_mackerels_shape() {
    let (standin, client) = start().await;
    let response = client.get("/api/v0/hosts", Some(KEY)).await;
    assert_eq!(response.status(), 404);
    assert!(error_message(response).await.contains("not emulated"));
    standin.shutdown().await.expect("clean shutdown");
}
