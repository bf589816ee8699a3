//! A message in the dead-letter queue: the attributes it carries (written by
//! the consumer, read by the operator CLI) and why it is there, as operators
//! filter on it (`dlq peek --reason`, `dlq redrive --reason`).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::reason::SetAsideReason;

/// The reason code, e.g. `malformed_json` (see `SetAsideReason::code`).
pub const REASON: &str = "Reason";
/// A sentence for the operator.
pub const REASON_DETAIL: &str = "ReasonDetail";
/// The message id it had on the source queue.
pub const SOURCE_MESSAGE_ID: &str = "SourceMessageId";
/// When the message was first sent (epoch milliseconds): what a value without
/// a time of its own is stamped with, however often it is redriven.
pub const SOURCE_SENT_TIMESTAMP: &str = "SourceSentTimestamp";
/// The source queue's ARN, when known.
pub const SOURCE_QUEUE_ARN: &str = "SourceQueueArn";

/// Every attribute the consumer writes when it parks a message.
pub const ALL: [&str; 5] = [
    REASON,
    REASON_DETAIL,
    SOURCE_MESSAGE_ID,
    SOURCE_SENT_TIMESTAMP,
    SOURCE_QUEUE_ARN,
];

/// The code shown for messages the queue's redrive policy moved: they carry no `Reason`.
const RETRIES_EXHAUSTED: &str = "retries_exhausted";

/// Why a message is in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterReason {
    /// The consumer set it aside, and said why in its `Reason` attribute.
    SetAside(SetAsideReason),
    /// No `Reason`: the queue's redrive policy moved it after `maxReceiveCount`
    /// failed receives (Mackerel kept failing, or the consumer crashed).
    RetriesExhausted,
    /// A `Reason` this version does not know (written by a newer consumer, or
    /// by hand): kept as it is, never mistaken for another.
    Unknown(String),
}

impl DeadLetterReason {
    /// Every reason an operator can filter on, in a stable order.
    pub fn known() -> impl Iterator<Item = DeadLetterReason> {
        SetAsideReason::ALL
            .into_iter()
            .map(DeadLetterReason::SetAside)
            .chain([DeadLetterReason::RetriesExhausted])
    }

    /// The reason of a DLQ message from its `Reason` attribute, if any.
    pub fn of_attribute(reason: Option<&str>) -> Self {
        match reason {
            None => Self::RetriesExhausted,
            Some(code) => Self::from_code(code).unwrap_or_else(|| Self::Unknown(code.to_owned())),
        }
    }

    /// Reads a known code (for `--reason`), saying which codes there are on a typo.
    pub fn parse_known(code: &str) -> Result<Self, String> {
        Self::from_code(code).ok_or_else(|| {
            let codes: Vec<String> = Self::known().map(|r| r.code().to_owned()).collect();
            format!("not a reason code; use one of: {}", codes.join(", "))
        })
    }

    fn from_code(code: &str) -> Option<Self> {
        if code == RETRIES_EXHAUSTED {
            return Some(Self::RetriesExhausted);
        }
        SetAsideReason::from_code(code).map(Self::SetAside)
    }

    /// The code as operators see and type it.
    pub fn code(&self) -> &str {
        match self {
            Self::SetAside(reason) => reason.code(),
            Self::RetriesExhausted => RETRIES_EXHAUSTED,
            Self::Unknown(code) => code,
        }
    }

    /// Whether redriving the message unchanged can ever succeed (once the cause
    /// outside the message is fixed).
    pub fn is_redrivable(&self) -> bool {
        match self {
            Self::SetAside(reason) => reason.is_redrivable(),
            Self::RetriesExhausted => true,
            Self::Unknown(_) => false,
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for DeadLetterReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_a_reason_was_moved_by_the_redrive_policy() {
        assert_eq!(
            DeadLetterReason::of_attribute(None),
            DeadLetterReason::RetriesExhausted
        );
        assert_eq!(
            DeadLetterReason::of_attribute(Some("unknown_service")),
            DeadLetterReason::SetAside(SetAsideReason::UnknownService)
        );
    }

    #[test]
    fn a_reason_this_version_does_not_know_is_kept_and_not_redriven() {
        let reason = DeadLetterReason::of_attribute(Some("from_the_future"));
        assert_eq!(reason.code(), "from_the_future");
        assert!(!reason.is_redrivable());
    }

    #[test]
    fn only_a_fixable_cause_is_worth_a_redrive() {
        assert!(!DeadLetterReason::parse_known("malformed_json")
            .unwrap()
            .is_redrivable());
        assert!(!DeadLetterReason::parse_known("too_old")
            .unwrap()
            .is_redrivable());
        assert!(DeadLetterReason::parse_known("unknown_service")
            .unwrap()
            .is_redrivable());
        assert!(DeadLetterReason::RetriesExhausted.is_redrivable());
    }

    #[test]
    fn a_typo_lists_every_code() {
        let error = DeadLetterReason::parse_known("typo").unwrap_err();
        assert!(
            error.contains("unknown_service") && error.contains("retries_exhausted"),
            "{error}"
        );
        assert_eq!(
            DeadLetterReason::known().count(),
            SetAsideReason::ALL.len() + 1
        );
    }
}
