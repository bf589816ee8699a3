//! Cold start: settings, AWS clients, the API key and the HTTP client, built once
//! and reused by every invocation.

use aws_config::BehaviorVersion;

use crate::api_key::{FixedKey, KeyError, KeyStore, SecretsManagerKey};
use crate::config::{ConfigError, KeySource, Settings};
use crate::dlq::SqsDeadLetters;
use crate::handler::Consumer;
use crate::mackerel::HttpTransport;

/// The consumer as deployed: HTTP to Mackerel, SQS for the DLQ.
pub type DeployedConsumer = Consumer<HttpTransport, SqsDeadLetters>;

/// Why the consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("Mackerel API key: {0}")]
    Key(#[from] KeyError),
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Reads the environment and builds the consumer. The standard AWS variables
/// (region, credentials, `AWS_ENDPOINT_URL`) configure the SQS and Secrets Manager clients.
pub async fn consumer_from_env() -> Result<(DeployedConsumer, aws_sdk_sqs::Client), StartupError> {
    let settings = Settings::from_env()?;
    let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let keys = match &settings.key_source {
        KeySource::Secret(secret_id) => {
            KeyStore::load(SecretsManagerKey {
                client: aws_sdk_secretsmanager::Client::new(&aws),
                secret_id: secret_id.clone(),
            })
            .await?
        }
        KeySource::Direct(key) => KeyStore::load(FixedKey(key.clone())).await?,
    };
    let transport = HttpTransport::new(&settings.api_base)?;
    let dead_letters = SqsDeadLetters {
        client: sqs.clone(),
        queue_url: settings.dlq_url.clone(),
    };
    Ok((Consumer::new(settings, transport, keys, dead_letters), sqs))
}
