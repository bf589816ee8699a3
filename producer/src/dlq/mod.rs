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
use crate::queue::receive;
use parked::Parked;

/// Empty receives in a row (each waiting 1 s) after which a queue counts as read through.
const EMPTY_POLLS_TO_STOP: u32 = 2;

/// Messages seen by a scan, still in the queue but hidden until handed back.
#[derive(Debug, Default)]
pub struct Scan {
    pub messages: Vec<Parked>,
    /// Every receipt handle received, to hand the messages back at the end.
    pub receipt_handles: Vec<String>,
    /// Whether the queue ran empty before the limit or the deadline.
    pub complete: bool,
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
    let stop_at = Instant::now() + deadline;
    let mut result = Scan::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut empty_polls = 0;
    while result.messages.len() < max {
        if Instant::now() >= stop_at || interrupt.is_set() {
            return Ok(result);
        }
        let batch = receive(sqs, url, visibility_seconds, 1).await?;
        let mut new = 0;
        for message in &batch {
            let parked = Parked::from_sqs(message);
            result.receipt_handles.push(parked.receipt_handle.clone());
            if seen.insert(parked.message_id.clone()) && result.messages.len() < max {
                result.messages.push(parked);
                new += 1;
            }
        }
        if new == 0 {
            empty_polls += 1;
            if empty_polls >= EMPTY_POLLS_TO_STOP {
                result.complete = true;
                return Ok(result);
            }
        } else {
            empty_polls = 0;
            on_progress(result.messages.len());
        }
    }
    Ok(result)
}
