//! One queue message as the handler sees it, whichever way it arrived (a Lambda
//! SQS event, or the local runner's ReceiveMessage), so both share one handler.

use aws_lambda_events::event::sqs::SqsMessage;
use sfn_mackerel_message::dead_letter::SOURCE_SENT_TIMESTAMP;
use sfn_mackerel_message::{Rejection, SetAsideReason};

/// A message to handle: its id, body and when the queue received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The SQS message id: what a batch item failure names.
    pub id: String,
    pub body: String,
    /// SQS `SentTimestamp`, epoch milliseconds: when this copy was sent.
    pub sent_at_ms: Option<i64>,
    /// The `SourceSentTimestamp` message attribute as it came: when a redriven
    /// message was first sent, which its values without a time must keep.
    pub first_sent_attribute: Option<String>,
    pub source_queue_arn: Option<String>,
}

/// Epoch milliseconds later than this are not a send time (year 3000).
const LATEST_PLAUSIBLE_MS: i64 = 32_503_680_000_000;

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
            first_sent_attribute: record
                .message_attributes
                .get(SOURCE_SENT_TIMESTAMP)
                .and_then(|attribute| attribute.string_value.clone()),
            source_queue_arn: record.event_source_arn,
        })
    }

    /// When the message was first sent, in epoch milliseconds: its
    /// `SourceSentTimestamp` attribute when it carries one (a redriven message),
    /// else SQS's `SentTimestamp`. Values without a time of their own take it,
    /// so a redrive never restamps them with the time of the redrive.
    pub fn first_sent_ms(&self) -> Result<Option<i64>, Rejection> {
        let Some(text) = &self.first_sent_attribute else {
            return Ok(self.sent_at_ms);
        };
        match text.trim().parse::<i64>() {
            Ok(ms) if (1..=LATEST_PLAUSIBLE_MS).contains(&ms) => Ok(Some(ms)),
            _ => Err(Rejection::new(
                SetAsideReason::InvalidSourceTimestamp,
                format!(
                    "the {SOURCE_SENT_TIMESTAMP} attribute {:?} is not epoch milliseconds; only redrives should set it, to the time the message was first sent",
                    text.chars().take(40).collect::<String>()
                ),
            )),
        }
    }

    /// What to record as the first send time when parking it: the attribute if
    /// it is readable, else this copy's `SentTimestamp`.
    pub fn first_sent_ms_for_parking(&self) -> Option<i64> {
        self.first_sent_ms().ok().flatten().or(self.sent_at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attribute: Option<&str>) -> InboundMessage {
        InboundMessage {
            id: "m".into(),
            body: "{}".into(),
            sent_at_ms: Some(1_795_981_423_000),
            first_sent_attribute: attribute.map(str::to_owned),
            source_queue_arn: None,
        }
    }

    #[test]
    fn a_message_sent_once_keeps_its_sent_timestamp() {
        assert_eq!(message(None).first_sent_ms(), Ok(Some(1_795_981_423_000)));
    }

    #[test]
    fn a_redriven_message_keeps_the_time_it_was_first_sent() {
        assert_eq!(
            message(Some("1795970000000")).first_sent_ms(),
            Ok(Some(1_795_970_000_000))
        );
    }

    #[test]
    fn an_unreadable_first_send_time_is_a_reason_not_a_guess() {
        for text in ["yesterday", "-5", "0", "99999999999999999", "1.5e12"] {
            let rejection = message(Some(text)).first_sent_ms().unwrap_err();
            assert_eq!(
                rejection.reason,
                SetAsideReason::InvalidSourceTimestamp,
                "{text}"
            );
        }
        assert_eq!(
            message(Some("junk")).first_sent_ms_for_parking(),
            Some(1_795_981_423_000)
        );
    }
}
