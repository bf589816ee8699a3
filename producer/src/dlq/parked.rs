//! A message in the dead-letter queue as the operator thinks of it: why it is
//! there (the consumer's `Reason` attribute, or `retries_exhausted` when the
//! queue's redrive policy moved it), how old it and its values are, and whether
//! redriving it can ever work. Pure apart from converting the SDK's type.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use serde::Serialize;
use sfn_mackerel_message::dead_letter as attribute;
use sfn_mackerel_message::dead_letter::{eventbridge, DeadLetterReason};
use sfn_mackerel_message::events::{facts_of, EventFacts};
use sfn_mackerel_message::timestamp::MACKEREL_RETENTION_SECONDS;
use sfn_mackerel_message::{decode, takes_time_from_sending, DecodeContext, TimeWindow};
use sfn_mackerel_sqs::batch::Outgoing;

/// One DLQ message, received.
#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub reason: DeadLetterReason,
    pub detail: Option<String>,
    pub source_message_id: Option<String>,
    /// When the message was first sent (epoch milliseconds): its
    /// `SourceSentTimestamp` attribute, else this DLQ copy's `SentTimestamp`
    /// (which a move by the redrive policy keeps from the source queue).
    pub source_sent_ms: Option<i64>,
    /// Whether `SourceSentTimestamp` travels with it as an attribute (a native
    /// move task keeps attributes but gives every message a new SentTimestamp).
    pub carries_first_sent_time: bool,
    /// Message attributes other than the dead-letter ones, the consumer's and
    /// EventBridge's (kept on redrive).
    pub other_attributes: HashMap<String, MessageAttributeValue>,
    /// What the body is when it is an EventBridge event, read once here
    /// without the consumer's configuration.
    pub event: Option<EventFacts>,
}

impl Parked {
    pub fn from_sqs(message: &Message) -> Self {
        let attributes = message.message_attributes().cloned().unwrap_or_default();
        let text = |name: &str| {
            attributes
                .get(name)
                .and_then(|v| v.string_value())
                .map(str::to_owned)
        };
        let system_sent = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|v| v.parse::<i64>().ok());
        let moved_by_the_redrive_policy = message
            .attributes()
            .is_some_and(|a| a.contains_key(&MessageSystemAttributeName::DeadLetterQueueSourceArn));
        let reason = DeadLetterReason::of_message(
            text(attribute::REASON).as_deref(),
            text(eventbridge::ERROR_CODE).as_deref(),
            moved_by_the_redrive_policy,
        );
        let detail = match reason {
            DeadLetterReason::EventDeliveryFailed => Some(eventbridge_failure(&text)),
            _ => text(attribute::REASON_DETAIL),
        };
        let body = message.body().unwrap_or_default();
        Self {
            message_id: message.message_id().unwrap_or_default().to_owned(),
            receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
            event: facts_of(body),
            body: body.to_owned(),
            reason,
            detail,
            source_message_id: text(attribute::SOURCE_MESSAGE_ID),
            source_sent_ms: text(attribute::SOURCE_SENT_TIMESTAMP)
                .and_then(|v| v.parse().ok())
                .or(system_sent),
            carries_first_sent_time: text(attribute::SOURCE_SENT_TIMESTAMP)
                .is_some_and(|v| v.parse::<i64>().is_ok()),
            other_attributes: attributes
                .into_iter()
                .filter(|(name, _)| {
                    !attribute::ALL.contains(&name.as_str())
                        && !eventbridge::ALL.contains(&name.as_str())
                })
                .collect(),
        }
    }

    /// The copy a redrive sends back: the body unchanged, the attributes the
    /// sender gave it, and the time it was first sent, so the consumer stamps
    /// values without a time of their own as the workflow sent them, not as
    /// the redrive did.
    pub fn redrive_copy(&self) -> Outgoing {
        let mut copy = Outgoing {
            body: self.body.clone(),
            attributes: self.other_attributes.clone(),
        };
        if let Some(sent) = self.source_sent_ms {
            copy = copy.with_text(attribute::SOURCE_SENT_TIMESTAMP, sent.to_string());
        }
        copy
    }

    /// Whether a native move task (which restamps SentTimestamp) would move
    /// the time of its values: some value takes the send time, and no
    /// `SourceSentTimestamp` keeps the first one.
    pub fn needs_its_first_send_time(&self) -> bool {
        !self.carries_first_sent_time && takes_time_from_sending(&self.body)
    }

    /// Seconds since the source queue received it.
    pub fn age_seconds(&self, now: i64) -> Option<i64> {
        self.source_sent_ms.map(|ms| now - ms.div_euclid(1000))
    }

    /// The time of its oldest value (an EventBridge event's own time), or
    /// when it was sent if the body has none readable.
    pub fn data_time(&self) -> Option<i64> {
        let sent = self.source_sent_ms.map(|ms| ms.div_euclid(1000));
        if let Some(event) = &self.event {
            return event.time.or(sent);
        }
        let context = DecodeContext {
            sent_at: sent,
            window: TimeWindow::unbounded(),
        };
        decode(&self.body, &context)
            .ok()
            .and_then(|d| d.values.iter().map(|v| v.time).min())
            .or(sent)
    }

    /// What the body is, when it is an EventBridge event (e.g. `Glue Job State
    /// Change: MyJob FAILED at …`).
    pub fn event_summary(&self) -> Option<String> {
        self.event.as_ref().map(EventFacts::summary)
    }

    /// Whether Mackerel would drop its values now (redriving it is pointless).
    pub fn too_old_for_mackerel(&self, now: i64) -> bool {
        self.data_time()
            .is_some_and(|t| now - t > MACKEREL_RETENTION_SECONDS)
    }
}

/// The reason detail of an event EventBridge could not deliver, from its attributes.
fn eventbridge_failure(text: &dyn Fn(&str) -> Option<String>) -> String {
    let or_unknown = |name: &str| text(name).unwrap_or_else(|| "?".to_owned());
    let mut detail = format!(
        "EventBridge could not deliver this event to {} (rule {}): {}: {}",
        or_unknown(eventbridge::TARGET_ARN),
        or_unknown(eventbridge::RULE_ARN),
        or_unknown(eventbridge::ERROR_CODE),
        or_unknown(eventbridge::ERROR_MESSAGE),
    );
    if let Some(condition) = text(eventbridge::EXHAUSTED_RETRY_CONDITION) {
        detail.push_str(&format!(
            "; gave up on {condition} after {} retries",
            or_unknown(eventbridge::RETRY_ATTEMPTS)
        ));
    }
    detail.push_str("; fix the queue policy or the target, then redrive");
    detail
}

/// A sample message for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub message_id: String,
    pub body: String,
    pub detail: Option<String>,
    /// What the body is when it is an EventBridge event.
    pub event: Option<String>,
}

/// The messages of one reason, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonGroup {
    pub reason: DeadLetterReason,
    pub count: usize,
    pub oldest_age_seconds: Option<i64>,
    pub newest_age_seconds: Option<i64>,
    /// Messages whose values Mackerel would drop now.
    pub too_old_for_mackerel: usize,
    /// Whether a redrive unchanged can succeed (after fixing the cause).
    pub redrivable: bool,
    pub samples: Vec<Sample>,
}

/// Groups messages by reason, largest group first.
pub fn group_by_reason(messages: &[Parked], now: i64, samples: usize) -> Vec<ReasonGroup> {
    let mut groups: BTreeMap<&DeadLetterReason, Vec<&Parked>> = BTreeMap::new();
    for message in messages {
        groups.entry(&message.reason).or_default().push(message);
    }
    let mut out: Vec<ReasonGroup> = groups
        .into_iter()
        .map(|(reason, members)| {
            let ages: Vec<i64> = members.iter().filter_map(|m| m.age_seconds(now)).collect();
            ReasonGroup {
                reason: reason.clone(),
                count: members.len(),
                oldest_age_seconds: ages.iter().copied().max(),
                newest_age_seconds: ages.iter().copied().min(),
                too_old_for_mackerel: members
                    .iter()
                    .filter(|m| m.too_old_for_mackerel(now))
                    .count(),
                redrivable: reason.is_redrivable(),
                samples: members
                    .iter()
                    .take(samples)
                    .map(|m| Sample {
                        message_id: m.message_id.clone(),
                        body: m.body.clone(),
                        detail: m.detail.clone(),
                        event: m.event_summary(),
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.reason.code().cmp(b.reason.code()))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_981_423;

    fn sqs_message(body: &str, reason: Option<&str>, sent_ms: i64) -> Message {
        let mut builder = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body(body)
            .attributes(
                MessageSystemAttributeName::SentTimestamp,
                sent_ms.to_string(),
            )
            .message_attributes(
                "Trace",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("abc")
                    .build()
                    .unwrap(),
            );
        if let Some(reason) = reason {
            builder = builder.message_attributes(
                attribute::REASON,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(reason)
                    .build()
                    .unwrap(),
            );
        }
        builder.build()
    }

    #[test]
    fn a_message_without_a_reason_was_moved_by_the_redrive_policy() {
        let parked = Parked::from_sqs(&sqs_message("{}", None, NOW * 1000));
        assert_eq!(parked.reason.code(), "retries_exhausted");
        let parked = Parked::from_sqs(&sqs_message("{}", Some("unknown_service"), NOW * 1000));
        assert_eq!(parked.reason.code(), "unknown_service");
    }

    fn with_text(builder: Message, name: &str, value: &str) -> Message {
        let mut attributes = builder.message_attributes().cloned().unwrap_or_default();
        attributes.insert(
            name.to_owned(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .unwrap(),
        );
        Message::builder()
            .message_id(builder.message_id().unwrap())
            .receipt_handle(builder.receipt_handle().unwrap())
            .body(builder.body().unwrap())
            .set_attributes(builder.attributes().cloned())
            .set_message_attributes(Some(attributes))
            .build()
    }

    use sfn_mackerel_testkit::events::GLUE_SAMPLE as GLUE_EVENT;

    #[test]
    fn an_event_eventbridge_could_not_deliver_shows_its_error_and_redrives_without_it() {
        let mut message = sqs_message(GLUE_EVENT, None, NOW * 1000);
        for (name, value) in [
            (eventbridge::ERROR_CODE, "SQS_PERMISSION_DENIED"),
            (eventbridge::ERROR_MESSAGE, "Access denied"),
            (
                eventbridge::RULE_ARN,
                "arn:aws:events:us-east-1:1:rule/glue",
            ),
            (eventbridge::TARGET_ARN, "arn:aws:sqs:us-east-1:1:results"),
            (
                eventbridge::EXHAUSTED_RETRY_CONDITION,
                "MaximumRetryAttempts",
            ),
            (eventbridge::RETRY_ATTEMPTS, "185"),
        ] {
            message = with_text(message, name, value);
        }
        let parked = Parked::from_sqs(&message);
        assert_eq!(parked.reason, DeadLetterReason::EventDeliveryFailed);
        let detail = parked.detail.clone().unwrap();
        for part in [
            "SQS_PERMISSION_DENIED: Access denied",
            "rule arn:aws:events:us-east-1:1:rule/glue",
            "arn:aws:sqs:us-east-1:1:results",
            "MaximumRetryAttempts after 185 retries",
        ] {
            assert!(detail.contains(part), "{detail}");
        }
        let copy = parked.redrive_copy();
        assert!(copy
            .attributes
            .keys()
            .all(|name| !eventbridge::ALL.contains(&name.as_str())));
        assert_eq!(copy.body, GLUE_EVENT);
        // The event's own time, not when it reached the DLQ, says whether Mackerel keeps it.
        assert_eq!(parked.data_time(), Some(1_504_764_123));
        assert!(parked.too_old_for_mackerel(NOW));
        assert_eq!(
            parked.event_summary().as_deref(),
            Some("Glue Job State Change: MyJob FAILED at 2017-09-07T06:02:03Z")
        );
    }

    #[test]
    fn only_foreign_attributes_are_kept_for_a_redrive() {
        let parked = Parked::from_sqs(&sqs_message("{}", Some("too_old"), NOW * 1000));
        let names: Vec<&String> = parked.other_attributes.keys().collect();
        assert_eq!(names, vec!["Trace"]);
    }

    #[test]
    fn the_values_time_decides_whether_mackerel_would_drop_them() {
        let fresh_message_old_value = Parked::from_sqs(&sqs_message(
            &format!(
                r#"{{"service":"svc","name":"a","value":1,"time":{}}}"#,
                NOW - 25 * 3600
            ),
            Some("unknown_service"),
            NOW * 1000,
        ));
        assert!(fresh_message_old_value.too_old_for_mackerel(NOW));
        let old_message_without_time = Parked::from_sqs(&sqs_message(
            r#"{"service":"svc","name":"a","value":1}"#,
            None,
            (NOW - 30 * 3600) * 1000,
        ));
        assert!(old_message_without_time.too_old_for_mackerel(NOW));
        let recent = Parked::from_sqs(&sqs_message("not json", Some("malformed_json"), NOW * 1000));
        assert!(!recent.too_old_for_mackerel(NOW));
    }

    #[test]
    fn groups_count_ages_and_samples_per_reason() {
        let messages: Vec<Parked> = [
            ("a", Some("unknown_service"), NOW - 100),
            ("b", Some("unknown_service"), NOW - 10),
            ("c", None, NOW - 50),
        ]
        .iter()
        .map(|(body, reason, sent)| Parked::from_sqs(&sqs_message(body, *reason, sent * 1000)))
        .collect();
        let groups = group_by_reason(&messages, NOW, 1);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].reason.code(), "unknown_service");
        assert_eq!(groups[0].count, 2);
        assert_eq!(groups[0].oldest_age_seconds, Some(100));
        assert_eq!(groups[0].newest_age_seconds, Some(10));
        assert_eq!(groups[0].samples.len(), 1);
        assert!(groups[0].redrivable);
        assert_eq!(groups[1].reason.code(), "retries_exhausted");
    }
}
