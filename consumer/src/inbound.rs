//! One queue message as the handler sees it, whichever way it arrived (a Lambda
//! SQS event, or the local runner's ReceiveMessage), so both share one handler.

use aws_lambda_events::event::sqs::SqsMessage;

/// A message to handle: its id, body and when the queue received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The SQS message id: what a batch item failure names.
    pub id: String,
    pub body: String,
    /// SQS `SentTimestamp`, epoch milliseconds: the time of values that carry none.
    pub sent_at_ms: Option<i64>,
    pub source_queue_arn: Option<String>,
}

/// A Lambda record without a message id cannot be reported as a single failure
/// (an empty identifier fails the whole batch anyway), so the batch is refused.
#[derive(Debug, thiserror::Error)]
#[error("SQS record {position} has no messageId; the whole batch is returned to the queue so that no message is lost")]
pub struct RecordWithoutId {
    pub position: usize,
}

impl InboundMessage {
    /// Converts a Lambda SQS record.
    pub fn from_lambda_record(
        position: usize,
        record: SqsMessage,
    ) -> Result<Self, RecordWithoutId> {
        let id = record
            .message_id
            .filter(|id| !id.is_empty())
            .ok_or(RecordWithoutId { position })?;
        Ok(Self {
            id,
            body: record.body.unwrap_or_default(),
            sent_at_ms: record
                .attributes
                .get("SentTimestamp")
                .and_then(|value| value.parse().ok()),
            source_queue_arn: record.event_source_arn,
        })
    }

    /// `SentTimestamp` in epoch seconds.
    pub fn sent_at_seconds(&self) -> Option<i64> {
        self.sent_at_ms.map(|ms| ms.div_euclid(1000))
    }
}
