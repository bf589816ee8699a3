//! The message attributes a parked message carries in the dead-letter queue:
//! written by the consumer, read by the operator CLI (`dlq peek`, `dlq redrive --reason`).

/// The reason code, e.g. `malformed_json` (see `SetAsideReason::code`).
pub const REASON: &str = "Reason";
/// A sentence for the operator.
pub const REASON_DETAIL: &str = "ReasonDetail";
/// The message id it had on the source queue.
pub const SOURCE_MESSAGE_ID: &str = "SourceMessageId";
/// When the source queue first received it (epoch milliseconds).
pub const SOURCE_SENT_TIMESTAMP: &str = "SourceSentTimestamp";
/// The source queue's ARN, when known.
pub const SOURCE_QUEUE_ARN: &str = "SourceQueueArn";
