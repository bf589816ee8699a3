//! The SQS client as an operator expects it: `--endpoint-url`, `--region` and
//! `--profile` over the standard AWS environment and config files, bounded
//! timeouts, and SDK errors turned into sentences that say what to check.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::error::CliError;

/// Where to reach SQS; every field falls back to the standard AWS environment
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`) and `~/.aws/config`.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// An SQS client and a description of where it points, for messages.
#[derive(Clone, Debug)]
pub struct Sqs {
    pub client: aws_sdk_sqs::Client,
    /// The endpoint override, or "the AWS default endpoint".
    pub endpoint: String,
}

/// Builds the SQS client. No request is made here.
pub async fn connect(options: &AwsOptions) -> Sqs {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            // Long polls wait at most 20 s; anything beyond this is a stuck endpoint.
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(90))
            .build(),
    );
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    let config = loader.load().await;
    let endpoint = options
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .unwrap_or_else(|| {
            let region = config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "no region set".to_owned());
            format!("the AWS SQS endpoint ({region})")
        });
    Sqs {
        client: aws_sdk_sqs::Client::new(&config),
        endpoint,
    }
}

/// Whether an SQS error means the queue does not exist.
pub fn is_missing_queue<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    matches!(
        error.code(),
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
    )
}

/// Whether an SQS error says the operation is not available on this endpoint
/// (moto answers StartMessageMoveTask with HTTP 500 "not been implemented").
pub fn is_not_supported<E: ProvideErrorMetadata>(
    error: &SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> bool {
    let code = error.code().unwrap_or_default();
    let message = error.message().unwrap_or_default().to_ascii_lowercase();
    let status = match error {
        SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
        SdkError::ResponseError(response) => Some(response.raw().status().as_u16()),
        _ => None,
    };
    message.contains("not been implemented")
        || message.contains("not implemented")
        || code.contains("NotImplemented")
        || code.contains("UnsupportedOperation")
        || code == "InvalidAction"
        || status == Some(501)
        || (status == Some(500) && code.is_empty())
}

/// Turns an SQS SDK error into an operator-facing error. `doing` says what was attempted.
pub fn sqs_error<E, R>(sqs: &Sqs, error: SdkError<E, R>, doing: &str, queue_url: &str) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if is_missing_queue(&error) {
        return CliError::QueueMissing {
            url: queue_url.to_owned(),
            doing: doing.to_owned(),
        };
    }
    tracing::debug!(doing, error = ?error, "the SDK's whole error");
    let detail = sfn_mackerel_sqs::error_text::cause_line(&error);
    match &error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => CliError::Unreachable(format!(
            "could not reach SQS at {} while {doing}: {detail}. Check --endpoint-url / AWS_ENDPOINT_URL, the network, and that AWS credentials are available (AWS_PROFILE, `aws sso login`)",
            sqs.endpoint
        )),
        SdkError::ConstructionFailure(_) => CliError::Usage(format!(
            "could not build the SQS request while {doing}: {detail}. Check the queue URL and the region"
        )),
        SdkError::ResponseError(_) => CliError::Unreachable(format!(
            "the endpoint {} did not answer like SQS while {doing}: {detail}. Check --endpoint-url",
            sqs.endpoint
        )),
        _ => {
            let code = error.code().unwrap_or_default();
            if code.contains("AccessDenied")
                || code.contains("InvalidClientTokenId")
                || code.contains("SignatureDoesNotMatch")
                || code.contains("ExpiredToken")
                || code.contains("UnrecognizedClient")
            {
                CliError::Refused(format!(
                    "SQS refused the request while {doing}: {detail}. Check the AWS credentials and that they may use queue {queue_url}"
                ))
            } else {
                CliError::Unreachable(format!(
                    "SQS answered with an error while {doing} on {queue_url}: {detail}"
                ))
            }
        }
    }
}
