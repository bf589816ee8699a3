//! The local pipeline for end-to-end tests: queues with a redrive policy in moto,
//! the Mackerel stand-in in-process, and the consumer wired to both.
#![allow(dead_code)]

use mackerel_standin::RunningStandIn;
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::dlq::SqsDeadLetters;
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::Consumer;

pub const API_KEY: &str = "e2e-write-key";

pub use sfn_mackerel_testkit::local::LocalQueues as Queues;
use sfn_mackerel_testkit::local::QueueSettings;

/// A results queue hiding a message for `visibility_seconds`, whose redrive
/// policy moves it to the DLQ after `max_receives`.
pub async fn queues(visibility_seconds: u32, max_receives: u32) -> Queues {
    Queues::create(
        "results",
        QueueSettings::default()
            .visibility(visibility_seconds)
            .moving_after(max_receives),
    )
    .await
}

/// The stand-in with the end-to-end key and these services.
pub async fn standin(services: &[&str]) -> RunningStandIn {
    sfn_mackerel_testkit::local::standin(API_KEY, None, services).await
}

pub type E2eConsumer = Consumer<HttpTransport, SqsDeadLetters>;

/// Settings for end-to-end runs: the test key, the DLQ, backoff in tens of milliseconds.
pub fn settings(api_base: &str, dlq_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut overrides = vec![
        ("MACKEREL_API_KEY", API_KEY),
        ("DLQ_URL", dlq_url),
        ("BACKOFF_BASE_MS", "20"),
        ("BACKOFF_CAP_MS", "200"),
        ("MACKEREL_TIMEOUT_MS", "2000"),
        ("DEADLINE_MARGIN_MS", "200"),
    ];
    overrides.extend_from_slice(extra);
    super::settings(api_base, &overrides)
}

pub async fn consumer(
    standin: &RunningStandIn,
    queues: &Queues,
    extra: &[(&str, &str)],
) -> E2eConsumer {
    let settings = settings(&standin.base_url(), &queues.dlq_url, extra);
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(FixedKey(ApiKey::new(API_KEY).unwrap()))
        .await
        .unwrap();
    let dead_letters = SqsDeadLetters {
        client: queues.sqs.clone(),
        queue_url: queues.dlq_url.clone(),
    };
    Consumer::new(settings, transport, keys, dead_letters)
}

/// Creates a job's monitor as the shipped Terraform module does: it watches the
/// job's alert series (`<job>.alert > 0`, the newest point alone) that the
/// consumer writes for the status series `status_metric` (`<job>.failed`).
pub async fn create_job_monitor(
    standin: &RunningStandIn,
    service: &str,
    status_metric: &str,
) -> String {
    let metric = sfn_mackerel_message::status::alert_series_of(status_metric)
        .expect("a job's status series ends with .failed");
    create_monitor(standin, service, status_metric, &metric).await
}

/// A monitor on the status series itself (`<job>.failed > 0`), the shape that
/// misses late failures.
pub async fn create_status_monitor(
    standin: &RunningStandIn,
    service: &str,
    status_metric: &str,
) -> String {
    create_monitor(standin, service, status_metric, status_metric).await
}

async fn create_monitor(
    standin: &RunningStandIn,
    service: &str,
    status_metric: &str,
    metric: &str,
) -> String {
    let monitor: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v0/monitors", standin.base_url()))
        .header("X-Api-Key", API_KEY)
        .json(&serde_json::json!({
            "type": "service", "name": format!("{status_metric} failed"), "service": service,
            "metric": metric, "operator": ">", "warning": null, "critical": 0,
            "duration": 1, "maxCheckAttempts": 1
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    monitor["id"].as_str().unwrap().to_owned()
}

/// Every alert so far, open and closed, oldest first: (monitorId, status).
pub async fn all_alerts(standin: &RunningStandIn) -> Vec<(String, String)> {
    let mut alerts = list_alerts(standin, "?withClosed=true").await;
    alerts.reverse();
    alerts
}

/// Open alerts as `GET /api/v0/alerts` lists them: (monitorId, status).
pub async fn open_alerts(standin: &RunningStandIn) -> Vec<(String, String)> {
    list_alerts(standin, "").await
}

/// `GET /api/v0/alerts` with `query`, newest first: (monitorId, status).
async fn list_alerts(standin: &RunningStandIn, query: &str) -> Vec<(String, String)> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v0/alerts{query}", standin.base_url()))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["monitorId"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A minute well inside Mackerel's 24 hours, with room for runs after it.
pub fn ten_oclock() -> i64 {
    (super::now() / 60 - 30) * 60
}

/// Hands `messages` to the consumer as one batch with ten seconds to answer;
/// each message's fate.
pub async fn handle(
    consumer: &E2eConsumer,
    messages: &[sfn_mackerel_consumer::InboundMessage],
) -> Vec<sfn_mackerel_consumer::Fate> {
    consumer
        .handle(
            messages,
            super::deadline_in(std::time::Duration::from_secs(10)),
        )
        .await
        .fates
}
