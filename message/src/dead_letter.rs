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

/// The attributes EventBridge gives an event it could not deliver to its
/// target and sent to the target's dead-letter queue instead (EventBridge user
/// guide, "Using dead-letter queues to process undelivered events"). The body
/// is the event itself, so a redrive hands it to the consumer unchanged.
pub mod eventbridge {
    pub const ERROR_CODE: &str = "ERROR_CODE";
    pub const ERROR_MESSAGE: &str = "ERROR_MESSAGE";
    pub const RULE_ARN: &str = "RULE_ARN";
    pub const TARGET_ARN: &str = "TARGET_ARN";
    pub const EXHAUSTED_RETRY_CONDITION: &str = "EXHAUSTED_RETRY_CONDITION";
    pub const RETRY_ATTEMPTS: &str = "RETRY_ATTEMPTS";
    /// All of them: they describe the failed delivery, so a redrive drops them.
    pub const ALL: [&str; 6] = [
        ERROR_CODE,
        ERROR_MESSAGE,
        RULE_ARN,
        TARGET_ARN,
        EXHAUSTED_RETRY_CONDITION,
        RETRY_ATTEMPTS,
    ];
}

/// The code shown for messages the queue's redrive policy moved: they carry no `Reason`.
const RETRIES_EXHAUSTED: &str = "retries_exhausted";
/// The code shown for events EventBridge could not deliver to the results queue.
const EVENT_DELIVERY_FAILED: &str = "event_delivery_failed";

/// Why a message is in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterReason {
    /// The consumer set it aside, and said why in its `Reason` attribute.
    SetAside(SetAsideReason),
    /// No `Reason`: the queue's redrive policy moved it after `maxReceiveCount`
    /// failed receives (Mackerel kept failing, or the consumer crashed).
    RetriesExhausted,
    /// No `Reason` but EventBridge's `ERROR_CODE`: an event that EventBridge
    /// could not deliver to the results queue (a queue policy that refused it,
    /// the queue gone, retries over) and sent here.
    EventDeliveryFailed,
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
            .chain([
                DeadLetterReason::RetriesExhausted,
                DeadLetterReason::EventDeliveryFailed,
            ])
    }

    /// The reason of a DLQ message from what it carries: the consumer's
    /// `Reason` attribute, EventBridge's `ERROR_CODE`, and whether SQS's redrive
    /// policy moved it (the `DeadLetterQueueSourceArn` system attribute, which
    /// only such a move sets). A move by the redrive policy wins: the message
    /// then ran out of receives, and any `Reason` or `ERROR_CODE` it carries is
    /// from an earlier stay in the DLQ that a native move task (which keeps
    /// attributes) brought back with it. Then the consumer's reason, then
    /// EventBridge's; with neither, the redrive policy moved it (its absence
    /// proves nothing: moto, for one, never sets it).
    pub fn of_message(
        reason: Option<&str>,
        eventbridge_error_code: Option<&str>,
        moved_by_the_redrive_policy: bool,
    ) -> Self {
        match (reason, eventbridge_error_code) {
            _ if moved_by_the_redrive_policy => Self::RetriesExhausted,
            (Some(code), _) => {
                Self::from_code(code).unwrap_or_else(|| Self::Unknown(code.to_owned()))
            }
            (None, Some(_)) => Self::EventDeliveryFailed,
            (None, None) => Self::RetriesExhausted,
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
        if code == EVENT_DELIVERY_FAILED {
            return Some(Self::EventDeliveryFailed);
        }
        SetAsideReason::from_code(code).map(Self::SetAside)
    }

    /// The code as operators see and type it.
    pub fn code(&self) -> &str {
        match self {
            Self::SetAside(reason) => reason.code(),
            Self::RetriesExhausted => RETRIES_EXHAUSTED,
            Self::EventDeliveryFailed => EVENT_DELIVERY_FAILED,
            Self::Unknown(code) => code,
        }
    }

    /// Whether redriving the message unchanged can ever succeed (once the cause
    /// outside the message is fixed).
    pub fn is_redrivable(&self) -> bool {
        match self {
            Self::SetAside(reason) => reason.is_redrivable(),
            Self::RetriesExhausted | Self::EventDeliveryFailed => true,
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
            DeadLetterReason::of_message(None, None, false),
            DeadLetterReason::RetriesExhausted
        );
        assert_eq!(
            DeadLetterReason::of_message(Some("unknown_service"), None, false),
            DeadLetterReason::SetAside(SetAsideReason::UnknownService)
        );
    }

    #[test]
    fn a_reason_this_version_does_not_know_is_kept_and_not_redriven() {
        let reason = DeadLetterReason::of_message(Some("from_the_future"), None, false);
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
            SetAsideReason::ALL.len() + 2
        );
    }

    #[test]
    fn an_event_eventbridge_could_not_deliver_is_told_apart_and_redrivable() {
        let reason = DeadLetterReason::of_message(None, Some("SQS_PERMISSION_DENIED"), false);
        assert_eq!(reason, DeadLetterReason::EventDeliveryFailed);
        assert_eq!(reason.code(), "event_delivery_failed");
        assert!(reason.is_redrivable());
        assert_eq!(
            DeadLetterReason::parse_known("event_delivery_failed"),
            Ok(reason)
        );
        assert_eq!(
            DeadLetterReason::of_message(Some("event_not_covered"), Some("X"), false),
            DeadLetterReason::SetAside(SetAsideReason::EventNotCovered)
        );
    }

    #[test]
    fn a_move_by_the_redrive_policy_outranks_attributes_from_an_earlier_stay() {
        for (reason, error_code) in [
            (Some("unknown_service"), None),
            (None, Some("SQS_PERMISSION_DENIED")),
        ] {
            assert_eq!(
                DeadLetterReason::of_message(reason, error_code, true),
                DeadLetterReason::RetriesExhausted
            );
        }
    }
}
