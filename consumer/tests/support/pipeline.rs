//! The local pipeline for end-to-end tests: queues with a redrive policy in moto,
//! the Mackerel stand-in in-process, and the consumer wired to both.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_sqs::config::{Credentials, Region};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use mackerel_standin::{Config, RunningStandIn, StandIn};
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::dlq::SqsDeadLetters;
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::Consumer;

pub const API_KEY: &str = "e2e-write-key";

pub fn moto_url() -> String {
    std::env::var("MOTO_URL").expect(
        "MOTO_URL is not set: run the tests with scripts/test.sh, which starts moto server, or start one and export MOTO_URL=http://127.0.0.1:PORT",
    )
}

pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

pub fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_007)
}

/// A source queue whose redrive policy moves a message to the DLQ after `max_receives`.
pub struct Queues {
    pub sqs: aws_sdk_sqs::Client,
    pub source_url: String,
    pub dlq_url: String,
}

impl Queues {
    pub async fn create(visibility_seconds: u32, max_receives: u32) -> Self {
        let sqs = aws_sdk_sqs::Client::new(&aws().await);
        let name = unique("results");
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()});
        let source_url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_seconds.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Self {
            sqs,
            source_url,
            dlq_url,
        }
    }

    pub async fn send_all(&self, bodies: &[String]) {
        for (n, group) in bodies.chunks(10).enumerate() {
            let entries: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("{n}-{i}"))
                        .message_body(body)
                        .build()
                        .unwrap()
                })
                .collect();
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.source_url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }

    /// Visible plus in-flight messages of a queue.
    pub async fn depth(&self, url: &str) -> u64 {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| {
            attrs
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Reads every DLQ message (without deleting it): (body, Reason attribute).
    pub async fn dlq_contents(&self) -> Vec<(String, Option<String>)> {
        let mut found = Vec::new();
        for _ in 0..200 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get("Reason"))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned);
                found.push((m.body.unwrap_or_default(), reason));
            }
        }
        found
    }
}

pub async fn standin(services: &[&str]) -> RunningStandIn {
    let mut config = Config::new().with_api_key(API_KEY).with_fault_seed(7);
    for service in services {
        config = config.with_service(*service);
    }
    StandIn::start(config).await.unwrap()
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

/// Creates a service-metric monitor like the shipped Terraform module's
/// (`failed > 0` critical, averaged over the latest `duration` points).
pub async fn create_failure_monitor(
    standin: &RunningStandIn,
    service: &str,
    metric: &str,
    duration: u32,
) -> String {
    let monitor: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v0/monitors", standin.base_url()))
        .header("X-Api-Key", API_KEY)
        .json(&serde_json::json!({
            "type": "service", "name": format!("{metric} failed"), "service": service,
            "metric": metric, "operator": ">", "warning": null, "critical": 0,
            "duration": duration, "maxCheckAttempts": 1
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

/// Open alerts as `GET /api/v0/alerts` lists them: (monitorId, status).
pub async fn open_alerts(standin: &RunningStandIn) -> Vec<(String, String)> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v0/alerts", standin.base_url()))
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

/// Waits (bounded) until `check` holds, polling every 100 ms.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within {limit:?}: {what}");
}
