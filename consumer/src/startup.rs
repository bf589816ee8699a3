//! Cold start: settings, AWS clients, the API key and the HTTP client, built once
//! and reused by every invocation; and what the operator hears when that fails:
//! one sentence with its causes, told to Lambda through the Runtime API's
//! init-error endpoint (else Lambda shows only "Runtime exited with error").

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
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

impl StartupError {
    /// The `errorType` Lambda shows for it.
    pub fn error_type(&self) -> &'static str {
        match self {
            StartupError::Config(_) => "Runtime.ConfigurationError",
            StartupError::Key(_) => "Runtime.ApiKeyError",
            StartupError::Http(_) => "Runtime.HttpClientError",
        }
    }
}

/// The body of `POST /2018-06-01/runtime/init/error`, as the Runtime API
/// documents it (`errorMessage`, `errorType`, `stackTrace`).
pub fn init_error_body(error: &StartupError) -> serde_json::Value {
    serde_json::json!({
        "errorMessage": sfn_mackerel_sqs::error_text::cause_line(error),
        "errorType": error.error_type(),
        "stackTrace": [],
    })
}

/// Tells Lambda why the cold start failed, so its console and logs show the
/// sentence (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror>).
/// A plain HTTP/1.1 request over TCP, the Runtime API being plain HTTP on a
/// local address: nothing that may itself have failed to start (the HTTP
/// client) is needed. One try within 3 s; a failure is only printed (the
/// process exits with the error anyway).
pub async fn report_init_error(runtime_api: &str, error: &StartupError) {
    let body = init_error_body(error).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {runtime_api}\r\nLambda-Runtime-Function-Error-Type: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        error.error_type(),
        body.len()
    );
    let sent = tokio::time::timeout(Duration::from_secs(3), async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(runtime_api).await?;
        stream.write_all(request.as_bytes()).await?;
        // The status line is all that is read, at most a few bytes.
        let mut answer = [0u8; 64];
        let read = stream.read(&mut answer).await?;
        Ok::<String, std::io::Error>(String::from_utf8_lossy(&answer[..read]).into_owned())
    })
    .await;
    match sent {
        Ok(Ok(answer)) if answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2") => {}
        Ok(Ok(answer)) => eprintln!(
            "note: the Runtime API answered the init error with {:?}",
            answer.lines().next().unwrap_or_default()
        ),
        Ok(Err(why)) => {
            eprintln!("note: could not report the init error to the Runtime API: {why}")
        }
        Err(_) => eprintln!("note: the Runtime API did not take the init error within 3 s"),
    }
}

/// Timeouts for the calls a batch makes besides Mackerel's (parking in the DLQ,
/// fetching the key again): each also stops at the batch's deadline, and these
/// keep one stuck endpoint from holding a batch that long. The cold start's key
/// fetch uses them too, so the operation ends within 8 s: inside Lambda's 10 s
/// init phase, with time left to report why.
fn short_call_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// Timeouts for the queue runner's receives, which long-poll up to 20 seconds.
fn polling_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(65))
        .build()
}

/// Reads the environment and builds the consumer, and the SQS client a queue
/// runner polls with. The standard AWS variables (region, credentials,
/// `AWS_ENDPOINT_URL`) configure the SQS and Secrets Manager clients.
pub async fn consumer_from_env() -> Result<(DeployedConsumer, aws_sdk_sqs::Client), StartupError> {
    let settings = Settings::from_env()?;
    let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let aws = base
        .to_builder()
        .timeout_config(short_call_timeouts())
        .build();
    let polling = base.to_builder().timeout_config(polling_timeouts()).build();
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
    Ok((
        Consumer::new(settings, transport, keys, dead_letters),
        aws_sdk_sqs::Client::new(&polling),
    ))
}
