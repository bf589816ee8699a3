//! The Lambda side: an SQS event in, a partial batch response out, bounded by
//! the invocation's deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tokio::time::Instant;

use crate::delivery::Transport;
use crate::dlq::DeadLetters;
use crate::handler::Consumer;
use crate::inbound::{InboundMessage, RecordWithoutId};

/// Handles one invocation. Only a record without a message id fails the whole
/// invocation; every other problem is a batch item failure or a parked message.
pub async fn handle_sqs_event<T: Transport, D: DeadLetters>(
    consumer: &Consumer<T, D>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, RecordWithoutId> {
    let deadline = instant_of_epoch_ms(event.context.deadline);
    let messages = event
        .payload
        .records
        .into_iter()
        .enumerate()
        .map(|(position, record)| InboundMessage::from_lambda_record(position, record))
        .collect::<Result<Vec<_>, _>>()?;
    let report = consumer.handle(&messages, deadline).await;
    let mut response = SqsBatchResponse::default();
    response.set_failures(report.failed_ids(&messages));
    Ok(response)
}

/// The longest a Lambda invocation can last (15 minutes): a deadline further
/// away than this is not one Lambda sent.
pub const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// Converts Lambda's deadline (epoch milliseconds, from the Runtime API's
/// `Lambda-Runtime-Deadline-Ms` header) into a monotonic instant. The header is
/// input like any other: a value further than the longest invocation is capped
/// there, so no arithmetic can overflow.
pub fn instant_of_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).min(LONGEST_INVOCATION);
    let now = Instant::now();
    now.checked_add(left).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absurd_deadline_is_capped_at_the_longest_invocation() {
        let deadline = instant_of_epoch_ms(u64::MAX);
        assert!(deadline <= Instant::now() + LONGEST_INVOCATION);
        assert!(deadline > Instant::now() + LONGEST_INVOCATION - Duration::from_secs(5));
    }

    #[test]
    fn a_deadline_in_the_past_leaves_no_time() {
        assert!(instant_of_epoch_ms(0) <= Instant::now());
    }
}
