//! Setting messages aside in the dead-letter queue ourselves, with the reason
//! attached, instead of letting them fail until the redrive policy moves them
//! there without one. The body goes unchanged, so a redrive replays it as sent,
//! and the time it was first sent goes with it, so a redrive cannot restamp it.

use std::future::Future;

use sfn_mackerel_message::SetAsideReason;
use sfn_mackerel_sqs::batch::{send_messages, CallLimits, EntryResult, Outgoing};
use tokio::time::Instant;

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
    /// Parks each request, giving up on what is not parked by `until`; the
    /// result at each position says whether that one was parked.
    fn park(
        &self,
        requests: &[ParkRequest<'_>],
        until: Instant,
    ) -> impl Future<Output = Vec<EntryResult>> + Send;
}

/// The SQS dead-letter queue.
pub struct SqsDeadLetters {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// Long details are cut: they are for reading, and every byte counts against the message size.
const MAX_DETAIL_CHARS: usize = 1_000;
/// SendMessageBatch calls in flight at once while parking.
const PARK_CONCURRENCY: usize = 4;

impl DeadLetters for SqsDeadLetters {
    async fn park(&self, requests: &[ParkRequest<'_>], until: Instant) -> Vec<EntryResult> {
        let messages: Vec<Outgoing> = requests.iter().map(dead_letter).collect();
        let limits = CallLimits {
            concurrency: PARK_CONCURRENCY,
            until: Some(until),
        };
        send_messages(&self.client, &self.queue_url, &messages, limits)
            .await
            .into_iter()
            .map(|result| result.map_err(|why| format!("DLQ {}: {why}", self.queue_url)))
            .collect()
    }
}

/// The DLQ copy of a message: its body unchanged, and why it is there.
pub fn dead_letter(request: &ParkRequest<'_>) -> Outgoing {
    let message = request.message;
    let mut outgoing = Outgoing::new(message.body.clone())
        .with_text(attribute::REASON, request.reason.code())
        .with_text(
            attribute::REASON_DETAIL,
            request
                .detail
                .chars()
                .take(MAX_DETAIL_CHARS)
                .collect::<String>(),
        )
        .with_text(attribute::SOURCE_MESSAGE_ID, message.id.clone());
    if let Some(sent) = message.first_sent_ms_for_parking() {
        outgoing = outgoing.with_text(attribute::SOURCE_SENT_TIMESTAMP, sent.to_string());
    }
    if let Some(arn) = &message.source_queue_arn {
        outgoing = outgoing.with_text(attribute::SOURCE_QUEUE_ARN, arn.clone());
    }
    outgoing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(first_sent: Option<&str>) -> InboundMessage {
        InboundMessage {
            id: "m-1".into(),
            body: "not json".into(),
            sent_at_ms: Some(1_795_981_423_000),
            first_sent_attribute: first_sent.map(str::to_owned),
            source_queue_arn: Some("arn:aws:sqs:us-east-1:123456789012:results".into()),
        }
    }

    fn text(outgoing: &Outgoing, name: &str) -> Option<String> {
        outgoing
            .attributes
            .get(name)
            .and_then(|v| v.string_value())
            .map(str::to_owned)
    }

    #[test]
    fn the_dlq_copy_carries_the_body_unchanged_and_the_reason() {
        let message = message(None);
        let copy = dead_letter(&ParkRequest {
            message: &message,
            reason: SetAsideReason::MalformedJson,
            detail: &"d".repeat(5_000),
        });
        assert_eq!(copy.body, "not json");
        assert_eq!(
            text(&copy, attribute::REASON).as_deref(),
            Some("malformed_json")
        );
        assert_eq!(
            text(&copy, attribute::REASON_DETAIL).map(|d| d.len()),
            Some(1_000)
        );
        assert_eq!(
            text(&copy, attribute::SOURCE_MESSAGE_ID).as_deref(),
            Some("m-1")
        );
        assert_eq!(
            text(&copy, attribute::SOURCE_SENT_TIMESTAMP).as_deref(),
            Some("1795981423000")
        );
    }

    #[test]
    fn a_message_parked_again_keeps_the_time_it_was_first_sent() {
        let message = message(Some("1795970000000"));
        let copy = dead_letter(&ParkRequest {
            message: &message,
            reason: SetAsideReason::UnknownService,
            detail: "404",
        });
        assert_eq!(
            text(&copy, attribute::SOURCE_SENT_TIMESTAMP).as_deref(),
            Some("1795970000000")
        );
    }
}
