//! The dead-letter queue commands: `peek` (look without removing), `redrive`
//! (move back to the source queue) and `purge` (delete everything), plus the
//! bounded scan that looks at many messages while keeping them in the queue.

pub mod parked;
pub mod peek;
pub mod purge;
pub mod redrive;

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::Sqs;
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::queue::{queue_info, receive};
use parked::Parked;

/// Empty receives in a row (each waiting 1 s) after which a queue counts as read through.
const EMPTY_POLLS_TO_STOP: u32 = 2;

/// Messages seen by a scan, still in the queue but hidden until handed back.
#[derive(Debug, Default)]
pub struct Scan {
    pub messages: Vec<Parked>,
    /// Every receipt handle received, to hand the messages back at the end.
    pub receipt_handles: Vec<String>,
    /// Whether every message of the queue was seen: the queue ran empty, and
    /// nobody else held messages out of sight.
    pub complete: bool,
    /// Why not, when not complete, in words for the report.
    pub incomplete_because: Option<String>,
}

/// How a receive loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Two receives in a row returned nothing.
    Empty,
    /// `max` distinct messages were seen.
    Limit,
    Deadline,
    Interrupted,
}

/// Receives up to `max` distinct messages, hiding each for `visibility_seconds`,
/// until the queue runs empty, `deadline` passes or the operator interrupts.
/// The caller hands them back with [`crate::queue::hand_back`].
pub async fn scan(
    sqs: &Sqs,
    url: &str,
    max: usize,
    visibility_seconds: i32,
    deadline: Duration,
    interrupt: &Interrupt,
    on_progress: impl Fn(usize),
) -> Result<Scan, CliError> {
    let (mut scan, end) = collect(
        || async {
            let batch = receive(sqs, url, visibility_seconds, 1).await?;
            Ok(batch.iter().map(Parked::from_sqs).collect())
        },
        max,
        Instant::now() + deadline,
        interrupt,
        on_progress,
    )
    .await?;
    scan.incomplete_because = match end {
        ScanEnd::Limit => Some(format!("stopped at {max} messages")),
        ScanEnd::Deadline => Some("the time for reading ran out".to_owned()),
        ScanEnd::Interrupted => Some("interrupted".to_owned()),
        ScanEnd::Empty => {
            // What another reader holds is invisible to this scan.
            let in_flight = queue_info(sqs, url).await?.depth.in_flight;
            let ours = scan.messages.len() as u64;
            (in_flight > ours).then(|| {
                format!(
                    "about {} messages were in flight, held by another reader",
                    in_flight - ours
                )
            })
        }
    };
    scan.complete = scan.incomplete_because.is_none();
    Ok(scan)
}

/// The receive loop of a scan, apart from SQS so its stop rule is testable. A
/// receive that returns only messages seen before (their visibility ran out
/// while the scan went on) is not an empty queue: unseen messages may still be
/// behind them. Only receives that return nothing end the scan as read through.
pub async fn collect<R, Fut>(
    mut receive: R,
    max: usize,
    stop_at: Instant,
    interrupt: &Interrupt,
    on_progress: impl Fn(usize),
) -> Result<(Scan, ScanEnd), CliError>
where
    R: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Parked>, CliError>>,
{
    let mut result = Scan::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut empty_polls = 0;
    loop {
        if result.messages.len() >= max {
            return Ok((result, ScanEnd::Limit));
        }
        if interrupt.is_set() {
            return Ok((result, ScanEnd::Interrupted));
        }
        if Instant::now() >= stop_at {
            return Ok((result, ScanEnd::Deadline));
        }
        let batch = receive().await?;
        if batch.is_empty() {
            empty_polls += 1;
            if empty_polls >= EMPTY_POLLS_TO_STOP {
                return Ok((result, ScanEnd::Empty));
            }
            continue;
        }
        empty_polls = 0;
        let before = result.messages.len();
        for parked in batch {
            result.receipt_handles.push(parked.receipt_handle.clone());
            if result.messages.len() < max && seen.insert(parked.message_id.clone()) {
                result.messages.push(parked);
            }
        }
        if result.messages.len() > before {
            on_progress(result.messages.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn parked(id: &str) -> Parked {
        Parked {
            message_id: id.to_owned(),
            receipt_handle: format!("rh-{id}"),
            body: String::new(),
            reason: sfn_mackerel_message::dead_letter::DeadLetterReason::RetriesExhausted,
            detail: None,
            source_message_id: None,
            source_sent_ms: None,
            carries_first_sent_time: false,
            other_attributes: Default::default(),
            event: None,
        }
    }

    fn batch(ids: std::ops::Range<u32>) -> Vec<Parked> {
        ids.map(|i| parked(&format!("m{i}"))).collect()
    }

    async fn collect_from(answers: Vec<Vec<Parked>>, max: usize) -> (Scan, ScanEnd) {
        let answers = Mutex::new(VecDeque::from(answers));
        collect(
            || {
                let next = answers.lock().unwrap().pop_front().unwrap_or_default();
                async move { Ok(next) }
            },
            max,
            Instant::now() + Duration::from_secs(60),
            &Interrupt::new(),
            |_| {},
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn messages_seen_again_do_not_end_the_scan_early() {
        let (scan, end) = collect_from(
            vec![batch(0..10), batch(0..10), batch(0..10), batch(10..15)],
            1_000,
        )
        .await;
        assert_eq!(end, ScanEnd::Empty);
        assert_eq!(
            scan.messages.len(),
            15,
            "the messages behind the reappeared ones were seen"
        );
        assert_eq!(
            scan.receipt_handles.len(),
            35,
            "every copy in hand is handed back"
        );
    }

    #[tokio::test]
    async fn a_scan_stopped_at_its_limit_says_so() {
        let (scan, end) = collect_from(vec![batch(0..10), batch(10..20)], 15).await;
        assert_eq!(end, ScanEnd::Limit);
        assert_eq!(scan.messages.len(), 15);
    }

    #[tokio::test]
    async fn two_empty_receives_end_a_scan_as_read_through() {
        let (scan, end) = collect_from(vec![batch(0..3)], 1_000).await;
        assert_eq!(end, ScanEnd::Empty);
        assert_eq!(scan.messages.len(), 3);
    }
}
