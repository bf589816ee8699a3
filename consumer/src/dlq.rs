//! Setting messages aside in the dead-letter queue ourselves, with the reason
//! attached, instead of letting them fail until the redrive policy moves them
//! there without one. The body goes unchanged, so a redrive replays it as sent.

use std::future::Future;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use sfn_mackerel_message::SetAsideReason;

use crate::inbound::InboundMessage;

/// Names of the message attributes a parked message carries.
pub use sfn_mackerel_message::dead_letter as attribute;

/// A message to set aside and why.
#[derive(Debug, Clone)]
pub struct ParkRequest<'a> {
    pub message: &'a InboundMessage,
    pub reason: SetAsideReason,
    pub detail: &'a str,
}

/// Where set-aside messages go.
pub trait DeadLetters: Send + Sync {
    /// Parks each request; the result at each position says whether that one was parked.
    fn park(
        &self,
        requests: &[ParkRequest<'_>],
    ) -> impl Future<Output = Vec<Result<(), String>>> + Send;
}

/// The SQS dead-letter queue.
pub struct SqsDeadLetters {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// SendMessageBatch takes at most 10 entries...
const MAX_ENTRIES: usize = 10;
/// ...and at most 256 KiB in all (kept a little under for attribute overhead).
const MAX_BATCH_BYTES: usize = 250 * 1024;
/// Long details are cut: they are for reading, and every byte counts against the message size.
const MAX_DETAIL_CHARS: usize = 1_000;

impl DeadLetters for SqsDeadLetters {
    async fn park(&self, requests: &[ParkRequest<'_>]) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Err("not sent".to_owned()); requests.len()];
        for group in size_bounded_groups(requests) {
            let entries: Vec<SendMessageBatchRequestEntry> = group
                .iter()
                .map(|&index| entry(index, &requests[index]))
                .collect();
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match sent {
                Ok(output) => {
                    for ok in output.successful() {
                        if let Some(slot) = ok
                            .id()
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| results.get_mut(i))
                        {
                            *slot = Ok(());
                        }
                    }
                    for failed in output.failed() {
                        if let Some(slot) = failed
                            .id()
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| results.get_mut(i))
                        {
                            *slot = Err(format!(
                                "the DLQ refused it: {} {}",
                                failed.code(),
                                failed.message().unwrap_or_default()
                            ));
                        }
                    }
                }
                Err(error) => {
                    let why = format!(
                        "sending to the DLQ {} failed: {}",
                        self.queue_url,
                        aws_sdk_sqs::error::DisplayErrorContext(&error)
                    );
                    for &index in &group {
                        results[index] = Err(why.clone());
                    }
                }
            }
        }
        results
    }
}

/// Splits request positions into SendMessageBatch calls within the entry and byte limits.
fn size_bounded_groups(requests: &[ParkRequest<'_>]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (index, request) in requests.iter().enumerate() {
        let size =
            request.message.body.len() + request.detail.len().min(MAX_DETAIL_CHARS * 4) + 512;
        if !current.is_empty() && (current.len() == MAX_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(index);
        bytes += size;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn entry(index: usize, request: &ParkRequest<'_>) -> SendMessageBatchRequestEntry {
    let message = request.message;
    let mut attributes = vec![
        (attribute::REASON, request.reason.code().to_owned()),
        (
            attribute::REASON_DETAIL,
            request.detail.chars().take(MAX_DETAIL_CHARS).collect(),
        ),
        (attribute::SOURCE_MESSAGE_ID, message.id.clone()),
    ];
    if let Some(sent) = message.sent_at_ms {
        attributes.push((attribute::SOURCE_SENT_TIMESTAMP, sent.to_string()));
    }
    if let Some(arn) = &message.source_queue_arn {
        attributes.push((attribute::SOURCE_QUEUE_ARN, arn.clone()));
    }
    let mut builder = SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        // SQS refuses an empty body; an empty one was malformed anyway and a space keeps it so.
        .message_body(if message.body.is_empty() {
            " "
        } else {
            &message.body
        });
    for (name, value) in attributes {
        if value.is_empty() {
            continue;
        }
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .expect("data_type is set");
        builder = builder.message_attributes(name, attribute);
    }
    builder.build().expect("id and body are set")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body_len: usize) -> InboundMessage {
        InboundMessage {
            id: "m".into(),
            body: "x".repeat(body_len),
            sent_at_ms: None,
            source_queue_arn: None,
        }
    }

    #[test]
    fn at_most_ten_entries_per_call() {
        let messages: Vec<InboundMessage> = (0..23).map(|_| message(10)).collect();
        let requests: Vec<ParkRequest> = messages
            .iter()
            .map(|m| ParkRequest {
                message: m,
                reason: SetAsideReason::MalformedJson,
                detail: "d",
            })
            .collect();
        let sizes: Vec<usize> = size_bounded_groups(&requests)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![10, 10, 3]);
    }

    #[test]
    fn large_bodies_split_calls_by_size() {
        let messages: Vec<InboundMessage> = (0..4).map(|_| message(100 * 1024)).collect();
        let requests: Vec<ParkRequest> = messages
            .iter()
            .map(|m| ParkRequest {
                message: m,
                reason: SetAsideReason::TooOld,
                detail: "d",
            })
            .collect();
        let groups = size_bounded_groups(&requests);
        assert_eq!(groups, vec![vec![0, 1], vec![2, 3]]);
    }
}
