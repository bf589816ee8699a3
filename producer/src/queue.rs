//! The SQS calls several commands share: a queue's ARN and depth, receiving
//! with every attribute, and handing messages back (visibility 0) when a
//! command only looked at them.

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use sfn_mackerel_sqs::batch::{change_visibility, delete_messages, CallLimits};

use crate::aws::{sqs_error, Sqs};
use crate::error::CliError;

/// How many messages a queue holds, as SQS approximates it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received by someone and not yet deleted (in flight).
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
}

impl Depth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// A queue's identity and depth.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub url: String,
    pub arn: String,
    pub depth: Depth,
}

/// The last path segment of a queue URL: its name.
pub fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// Reads a queue's ARN and depth; fails with exit code 3 when it does not exist.
pub async fn queue_info(sqs: &Sqs, url: &str) -> Result<QueueInfo, CliError> {
    let output = sqs
        .client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| sqs_error(sqs, e, "reading the queue's attributes", url))?;
    let attributes = output.attributes();
    let number = |name: QueueAttributeName| {
        attributes
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(QueueInfo {
        url: url.to_owned(),
        arn: attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default(),
        depth: Depth {
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: number(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        },
    })
}

/// Receives up to 10 messages with all attributes, hiding them for `visibility_seconds`.
pub async fn receive(
    sqs: &Sqs,
    url: &str,
    visibility_seconds: i32,
    wait_seconds: i32,
) -> Result<Vec<Message>, CliError> {
    let output = sqs
        .client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility_seconds)
        .wait_time_seconds(wait_seconds)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| sqs_error(sqs, e, "receiving messages", url))?;
    Ok(output.messages.unwrap_or_default())
}

/// Makes received messages visible again at once. Returns how many could not be
/// handed back (they return by themselves when their visibility timeout ends).
pub async fn hand_back(sqs: &Sqs, url: &str, receipt_handles: &[String]) -> usize {
    change_visibility(&sqs.client, url, receipt_handles, 0, CallLimits::SEQUENTIAL)
        .await
        .iter()
        .filter(|result| result.is_err())
        .count()
}

/// Deletes received messages; returns the receipt handles that could not be deleted.
pub async fn delete(sqs: &Sqs, url: &str, receipt_handles: &[String]) -> Vec<String> {
    delete_messages(&sqs.client, url, receipt_handles, CallLimits::SEQUENTIAL)
        .await
        .into_iter()
        .zip(receipt_handles)
        .filter(|(result, _)| result.is_err())
        .map(|(_, handle)| handle.clone())
        .collect()
}

/// The queues whose redrive policy names `dlq_url` as their dead-letter queue.
pub async fn dead_letter_sources(sqs: &Sqs, dlq_url: &str) -> Result<Vec<String>, CliError> {
    sfn_mackerel_sqs::queue::dead_letter_sources(&sqs.client, dlq_url)
        .await
        .map_err(|e| sqs_error(sqs, e, "listing the queues that use this DLQ", dlq_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_name_is_the_last_segment_of_its_url() {
        assert_eq!(
            queue_name("https://sqs.eu-west-1.amazonaws.com/123456789012/results-dlq"),
            "results-dlq"
        );
        assert_eq!(queue_name("http://127.0.0.1:5000/123456789012/q/"), "q");
    }
}
