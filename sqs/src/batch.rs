//! SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch over any
//! number of messages: cut into calls SQS accepts, run a few at a time, and
//! answered with one result per message in input order, so that no caller ever
//! maps a batch result back by hand.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;

use crate::error_text::call_failed;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use futures::StreamExt;
use tokio::time::Instant;

/// Entries one batch call may carry.
pub const MAX_ENTRIES: usize = 10;
/// The most a SendMessageBatch call may carry in all: bodies and attributes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// One message's result: taken, or why SQS did not take it.
pub type EntryResult = Result<(), String>;

/// A message to send: its body and message attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outgoing {
    pub body: String,
    pub attributes: HashMap<String, MessageAttributeValue>,
}

impl Outgoing {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            attributes: HashMap::new(),
        }
    }

    /// Adds a `String` attribute; an empty value is left out (SQS refuses it).
    pub fn with_text(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("the data type is set");
            self.attributes.insert(name.to_owned(), attribute);
        }
        self
    }

    /// What SQS counts against its size limit: the body, and every attribute's
    /// name, data type and value.
    pub fn payload_bytes(&self) -> usize {
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(name, value)| {
                name.len()
                    + value.data_type().len()
                    + value.string_value().map_or(0, str::len)
                    + value.binary_value().map_or(0, |b| b.as_ref().len())
            })
            .sum();
        self.body.len() + attributes
    }
}

/// How a run of batch calls may go.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// No call starts after this instant, and one still running then counts as
    /// failed for each of its entries.
    pub until: Option<Instant>,
}

impl CallLimits {
    /// One call at a time, no deadline.
    pub const SEQUENTIAL: CallLimits = CallLimits {
        concurrency: 1,
        until: None,
    };
}

/// Groups entry sizes into calls of at most [`MAX_ENTRIES`] entries and
/// [`MAX_PAYLOAD_BYTES`] in all, in order. An entry larger than the limit gets a
/// call of its own (SQS then refuses that entry with a reason).
pub fn calls_by_size(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut calls = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (index, &size) in sizes.iter().enumerate() {
        let entries = index - start;
        if entries > 0 && (entries == MAX_ENTRIES || bytes.saturating_add(size) > MAX_PAYLOAD_BYTES)
        {
            calls.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < sizes.len() {
        calls.push(start..sizes.len());
    }
    calls
}

/// Sends `messages` to `queue_url`; the result at each position is that message's.
pub async fn send_messages(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Outgoing],
    limits: CallLimits,
) -> Vec<EntryResult> {
    let sizes: Vec<usize> = messages.iter().map(Outgoing::payload_bytes).collect();
    run_calls(calls_by_size(&sizes), messages.len(), limits, |range| {
        let entries: Vec<SendMessageBatchRequestEntry> = messages[range]
            .iter()
            .enumerate()
            .map(|(id, message)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id.to_string())
                    // SQS refuses an empty body; a space keeps what was (not) there.
                    .message_body(if message.body.is_empty() {
                        " "
                    } else {
                        &message.body
                    })
                    .set_message_attributes(
                        (!message.attributes.is_empty()).then(|| message.attributes.clone()),
                    )
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        async move {
            let output = client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|error| call_failed("SendMessageBatch", &error))?;
            Ok(CallAnswer::of(
                output.successful().iter().map(|e| e.id()),
                output.failed(),
            ))
        }
    })
    .await
}

/// Deletes received messages by receipt handle.
pub async fn delete_messages(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handles: &[String],
    limits: CallLimits,
) -> Vec<EntryResult> {
    let calls = calls_of_ten(receipt_handles.len());
    run_calls(calls, receipt_handles.len(), limits, |range| {
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipt_handles[range]
            .iter()
            .enumerate()
            .map(|(id, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id.to_string())
                    .receipt_handle(handle)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        async move {
            let output = client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|error| call_failed("DeleteMessageBatch", &error))?;
            Ok(CallAnswer::of(
                output.successful().iter().map(|e| e.id()),
                output.failed(),
            ))
        }
    })
    .await
}

/// Sets the visibility timeout of received messages: 0 hands them back at once,
/// more keeps them hidden that long from now.
pub async fn change_visibility(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handles: &[String],
    seconds: i32,
    limits: CallLimits,
) -> Vec<EntryResult> {
    let calls = calls_of_ten(receipt_handles.len());
    run_calls(calls, receipt_handles.len(), limits, |range| {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = receipt_handles[range]
            .iter()
            .enumerate()
            .map(|(id, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(id.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(seconds)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        async move {
            let output = client
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|error| call_failed("ChangeMessageVisibilityBatch", &error))?;
            Ok(CallAnswer::of(
                output.successful().iter().map(|e| e.id()),
                output.failed(),
            ))
        }
    })
    .await
}

/// Positions cut into calls of ten (deletes and visibility changes have no size limit to mind).
fn calls_of_ten(count: usize) -> Vec<Range<usize>> {
    (0..count)
        .step_by(MAX_ENTRIES)
        .map(|start| start..(start + MAX_ENTRIES).min(count))
        .collect()
}

/// What one batch call answered: the entry ids SQS took, and those it refused with why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallAnswer {
    pub taken: Vec<String>,
    pub refused: Vec<(String, String)>,
}

impl CallAnswer {
    /// The answer from the ids of a call's successful entries and its failed ones.
    fn of<'a>(taken: impl Iterator<Item = &'a str>, failed: &[BatchResultErrorEntry]) -> Self {
        Self {
            taken: taken.map(str::to_owned).collect(),
            refused: failed
                .iter()
                .map(|entry| {
                    let why = format!("{} {}", entry.code(), entry.message().unwrap_or_default());
                    (entry.id().to_owned(), why.trim().to_owned())
                })
                .collect(),
        }
    }
}

/// Runs one call per range, a few at a time and within the deadline, and maps
/// every answer back to the positions it covered.
async fn run_calls<F, Fut>(
    calls: Vec<Range<usize>>,
    total: usize,
    limits: CallLimits,
    call: F,
) -> Vec<EntryResult>
where
    F: Fn(Range<usize>) -> Fut,
    Fut: Future<Output = Result<CallAnswer, String>>,
{
    let call = &call;
    let answers: Vec<(Range<usize>, Result<CallAnswer, String>)> = futures::stream::iter(calls)
        .map(|range| async move {
            let answer = match limits.until {
                Some(until) if Instant::now() >= until => {
                    Err("not sent: no time was left before the deadline".to_owned())
                }
                Some(until) => tokio::time::timeout_at(until, call(range.clone()))
                    .await
                    .unwrap_or_else(|_| {
                        Err("the call did not end before the deadline; SQS may or may not have taken it".to_owned())
                    }),
                None => call(range.clone()).await,
            };
            (range, answer)
        })
        .buffer_unordered(limits.concurrency.max(1))
        .collect()
        .await;
    let mut results: Vec<EntryResult> = vec![Err("not sent".to_owned()); total];
    for (range, answer) in answers {
        map_answer(&mut results[range], answer);
    }
    results
}

/// Writes one call's answer into the results of the entries it carried: ids are
/// positions within the call.
pub fn map_answer(slots: &mut [EntryResult], answer: Result<CallAnswer, String>) {
    let answer = match answer {
        Ok(answer) => answer,
        Err(why) => {
            for slot in slots.iter_mut() {
                *slot = Err(why.clone());
            }
            return;
        }
    };
    for slot in slots.iter_mut() {
        *slot = Err("SQS answered the call without a result for this entry".to_owned());
    }
    for id in answer.taken {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| slots.get_mut(i)) {
            *slot = Ok(());
        }
    }
    for (id, why) in answer.refused {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| slots.get_mut(i)) {
            *slot = Err(format!("SQS refused it: {why}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_hold_at_most_ten_entries() {
        let calls = calls_by_size(&[10; 23]);
        assert_eq!(calls, vec![0..10, 10..20, 20..23]);
    }

    #[test]
    fn calls_stay_within_the_payload_limit() {
        let calls = calls_by_size(&[100 * 1024; 4]);
        assert_eq!(calls, vec![0..2, 2..4]);
    }

    #[test]
    fn an_entry_above_the_limit_gets_a_call_of_its_own() {
        let calls = calls_by_size(&[10, MAX_PAYLOAD_BYTES + 1, 10]);
        assert_eq!(calls, vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn no_entries_no_calls() {
        assert!(calls_by_size(&[]).is_empty());
        assert!(calls_of_ten(0).is_empty());
    }

    #[test]
    fn each_entry_gets_its_own_answer() {
        let mut slots = vec![Err(String::new()); 3];
        map_answer(
            &mut slots,
            Ok(CallAnswer {
                taken: vec!["0".into(), "2".into()],
                refused: vec![("1".into(), "InvalidParameterValue too big".into())],
            }),
        );
        assert_eq!(slots[0], Ok(()));
        assert_eq!(
            slots[1],
            Err("SQS refused it: InvalidParameterValue too big".into())
        );
        assert_eq!(slots[2], Ok(()));
    }

    #[test]
    fn a_failed_call_fails_every_entry_with_the_reason() {
        let mut slots = vec![Ok(()); 2];
        map_answer(&mut slots, Err("SendMessageBatch failed: timeout".into()));
        assert!(slots
            .iter()
            .all(|s| s == &Err("SendMessageBatch failed: timeout".to_owned())));
    }

    #[test]
    fn an_entry_sqs_said_nothing_about_is_not_taken() {
        let mut slots = vec![Ok(()); 2];
        map_answer(
            &mut slots,
            Ok(CallAnswer {
                taken: vec!["0".into(), "7".into(), "x".into()],
                refused: vec![],
            }),
        );
        assert_eq!(slots[0], Ok(()));
        assert!(slots[1].is_err());
    }

    #[test]
    fn the_payload_counts_attributes_too() {
        let message = Outgoing::new("abc").with_text("Reason", "too_old");
        assert_eq!(
            message.payload_bytes(),
            3 + "Reason".len() + "String".len() + 7
        );
        assert!(Outgoing::new("b")
            .with_text("Empty", "")
            .attributes
            .is_empty());
    }
}
