//! The local world on loopback: moto server's SQS (from `MOTO_URL`, started by
//! `scripts/test.sh`), a results queue with its DLQ and redrive policy shaped
//! like the Terraform module's, and the Mackerel stand-in in-process. Every
//! Rust test and bench stands it up through here; `scripts/local_world.py` is
//! the same for the scripts, and both take the module's defaults (a Terraform
//! test checks that these constants still match the HCL).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use mackerel_standin::{Config, RunningStandIn, StandIn};

/// The module's visibility timeout with its default function timeout (60 s)
/// and batching window (20 s): 6 x 60 + 20.
pub const MODULE_VISIBILITY_TIMEOUT_SECONDS: u32 = 380;
/// The module's default `max_receive_count`.
pub const MODULE_MAX_RECEIVE_COUNT: u32 = 5;
/// The module's DLQ retention: SQS's maximum, 14 days.
pub const MODULE_DLQ_RETENTION_SECONDS: u32 = 1_209_600;

/// Where moto server listens.
pub fn moto_url() -> String {
    std::env::var("MOTO_URL").expect(
        "MOTO_URL is not set: run the tests with scripts/test.sh, which starts moto server, or start one and export MOTO_URL=http://127.0.0.1:PORT",
    )
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_007)
}

/// Epoch seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

/// AWS settings pointing at moto, with static credentials.
pub async fn aws() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

/// An SQS client on moto.
pub async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws().await)
}

/// How the results queue differs from the module's, when a test needs it to.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub visibility_timeout_seconds: u32,
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout_seconds: MODULE_VISIBILITY_TIMEOUT_SECONDS,
            max_receive_count: MODULE_MAX_RECEIVE_COUNT,
        }
    }
}

impl QueueSettings {
    pub fn visibility(mut self, seconds: u32) -> Self {
        self.visibility_timeout_seconds = seconds;
        self
    }

    /// The redrive policy moves a message to the DLQ after this many receives.
    pub fn moving_after(mut self, receives: u32) -> Self {
        self.max_receive_count = receives;
        self
    }
}

/// A results queue and its DLQ, wired by a redrive policy.
pub struct LocalQueues {
    pub sqs: aws_sdk_sqs::Client,
    pub source_url: String,
    pub dlq_url: String,
}

impl LocalQueues {
    /// Creates `<prefix>-…` and `<prefix>-…-dlq` with `settings`.
    pub async fn create(prefix: &str, settings: QueueSettings) -> Self {
        let sqs = sqs().await;
        let name = unique(prefix);
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                MODULE_DLQ_RETENTION_SECONDS.to_string(),
            )
            .send()
            .await
            .expect("moto creates the DLQ")
            .queue_url
            .expect("a created queue has a URL");
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": settings.max_receive_count.to_string(),
        });
        let source_url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout_seconds.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .expect("moto creates the results queue")
            .queue_url
            .expect("a created queue has a URL");
        Self {
            sqs,
            source_url,
            dlq_url,
        }
    }

    /// Sends every body to the results queue, ten per call.
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
                        .expect("id and body are set")
                })
                .collect();
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.source_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("moto takes the batch");
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }

    /// Visible plus in-flight messages of a queue.
    pub async fn depth(&self, url: &str) -> u64 {
        depth(&self.sqs, url).await
    }

    /// Reads every DLQ message (hiding, not deleting it): (body, Reason attribute).
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
                .expect("moto answers a receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get(sfn_mackerel_message::dead_letter::REASON))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned);
                found.push((m.body.unwrap_or_default(), reason));
            }
        }
        found
    }
}

/// A queue's ARN.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("moto answers GetQueueAttributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("a queue has an ARN")
}

/// Visible plus in-flight messages of a queue.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("moto answers GetQueueAttributes")
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

/// A secret on moto holding `{"MACKEREL_API_KEY": key}`; returns its id.
pub async fn api_key_secret(key: &str) -> String {
    secret_holding(&serde_json::json!({ "MACKEREL_API_KEY": key }).to_string()).await
}

/// A secret on moto holding exactly `text`; returns its id.
pub async fn secret_holding(text: &str) -> String {
    let id = unique("mackerel-api-key");
    aws_sdk_secretsmanager::Client::new(&aws().await)
        .create_secret()
        .name(&id)
        .secret_string(text)
        .send()
        .await
        .expect("moto creates the secret");
    id
}

/// The consumer as deployed (HTTP to `settings.api_base`) with the key `api_key`
/// given directly, parking into `dead_letters`.
pub async fn http_consumer<D: sfn_mackerel_consumer::dlq::DeadLetters>(
    settings: sfn_mackerel_consumer::config::Settings,
    api_key: &str,
    dead_letters: D,
) -> sfn_mackerel_consumer::Consumer<sfn_mackerel_consumer::mackerel::HttpTransport, D> {
    use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
    let transport = sfn_mackerel_consumer::mackerel::HttpTransport::new(&settings.api_base)
        .expect("the HTTP client builds");
    let keys = KeyStore::load(FixedKey(ApiKey::new(api_key).expect("a usable test key")))
        .await
        .expect("a fixed key loads");
    sfn_mackerel_consumer::Consumer::new(settings, transport, keys, dead_letters)
}

/// The stand-in in-process with a write key, an optional read-only key, these
/// services and a fixed fault seed.
pub async fn standin(write_key: &str, read_key: Option<&str>, services: &[&str]) -> RunningStandIn {
    let mut config = Config::new().with_api_key(write_key).with_fault_seed(7);
    if let Some(read_key) = read_key {
        config = config.with_read_only_api_key(read_key);
    }
    for service in services {
        config = config.with_service(*service);
    }
    StandIn::start(config)
        .await
        .expect("the stand-in starts on loopback")
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
