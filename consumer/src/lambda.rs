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

/// Deadlines below this (epoch milliseconds: 2001-09-09) cannot be Lambda's: they
/// are durations, as `cargo lambda watch` sends (`Lambda-Runtime-Deadline-Ms:
/// 600000`, ten minutes). No Lambda deadline is decades in the past.
pub const EARLIEST_EPOCH_DEADLINE_MS: u64 = 1_000_000_000_000;

/// How long an invocation has, from the Runtime API's `Lambda-Runtime-Deadline-Ms`
/// (epoch milliseconds; a duration from an emulator, see
/// [`EARLIEST_EPOCH_DEADLINE_MS`]) and "now" in epoch milliseconds. Pure. The
/// header is input like any other: never more than the longest invocation.
pub fn time_left(deadline_ms: u64, now_ms: u64) -> Duration {
    let left_ms = if deadline_ms < EARLIEST_EPOCH_DEADLINE_MS {
        deadline_ms
    } else {
        deadline_ms.saturating_sub(now_ms)
    };
    Duration::from_millis(left_ms).min(LONGEST_INVOCATION)
}

/// Converts Lambda's deadline into a monotonic instant (see [`time_left`]). A
/// duration-style deadline is said once per process in a warning.
pub fn instant_of_epoch_ms(deadline_ms: u64) -> Instant {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let left = time_left(deadline_ms, now_ms);
    if deadline_ms < EARLIEST_EPOCH_DEADLINE_MS {
        WARNED.call_once(|| {
            tracing::warn!(
                deadline_ms,
                "the Runtime API sent a deadline that cannot be an epoch time (an emulator such as `cargo lambda watch` sends the time left); it is read as {} ms from now",
                left.as_millis()
            );
        });
    }
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

    const NOW_MS: u64 = 1_795_981_423_000;

    #[test]
    fn an_epoch_deadline_leaves_the_time_until_it() {
        assert_eq!(time_left(NOW_MS + 30_000, NOW_MS), Duration::from_secs(30));
    }

    #[test]
    fn a_deadline_in_the_past_leaves_no_time() {
        assert_eq!(time_left(NOW_MS - 1, NOW_MS), Duration::ZERO);
        assert_eq!(
            time_left(EARLIEST_EPOCH_DEADLINE_MS, NOW_MS),
            Duration::ZERO
        );
    }

    #[test]
    fn a_deadline_decades_in_the_past_is_an_emulators_duration() {
        // cargo lambda watch 1.9.2 sends Lambda-Runtime-Deadline-Ms: 600000.
        assert_eq!(time_left(600_000, NOW_MS), Duration::from_secs(600));
        assert_eq!(time_left(0, NOW_MS), Duration::ZERO);
        assert_eq!(time_left(u64::MAX, NOW_MS), LONGEST_INVOCATION);
    }
}
