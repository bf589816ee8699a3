//! Running the consumer outside Lambda: long-poll a queue the way the Lambda
//! event source mapping does, hand each batch to the same handler, delete what
//! was posted or parked, and leave the failures to their visibility timeout (so
//! the queue's redrive policy moves them to the DLQ after maxReceiveCount).
//! This is how the demo and the end-to-end tests run the pipeline, and how the
//! consumer runs on a container platform.
//!
//! SQS hides what the runner holds for as long as it holds it: every receive
//! asks for the runner's visibility timeout, and a batch still in hand halfway
//! through it has its messages hidden again. A worker that dies stops the runner:
//! the others finish the batches in hand, and the run ends with an error, so a
//! container platform restarts it instead of keeping a process that polls nothing.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use sfn_mackerel_message::dead_letter::SOURCE_SENT_TIMESTAMP;
use sfn_mackerel_sqs::batch::{change_visibility, delete_messages, CallLimits};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::delivery::Transport;
use crate::dlq::DeadLetters;
use crate::handler::Consumer;
use crate::inbound::InboundMessage;

/// How the runner polls, mirroring the event source mapping's settings.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub queue_url: String,
    /// Messages per batch (the mapping's `batch_size`); 1 to 10,000.
    pub batch_size: usize,
    /// How long to keep collecting once the first message of a batch is in
    /// (the mapping's `maximum_batching_window_in_seconds`).
    pub batching_window: Duration,
    /// Batches handled at the same time (the mapping's `maximum_concurrency`).
    pub concurrency: usize,
    /// How long SQS hides a received message; the queue's own when `None`.
    /// A batch is answered within 80% of it.
    pub visibility_timeout: Option<Duration>,
    /// Stop after this long without any message (for demos and tests); `None` runs until stopped.
    pub exit_when_idle: Option<Duration>,
}

/// What a run did, for the final log line and the tests.
#[derive(Debug, Default)]
pub struct RunnerTally {
    pub batches: AtomicU64,
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    pub left_for_retry: AtomicU64,
    /// Handled messages whose delete failed: SQS delivers them again.
    pub delete_failures: AtomicU64,
}

/// Why the runner could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("could not read the attributes of queue {queue_url}: {cause}. Check the URL, the endpoint (AWS_ENDPOINT_URL) and the credentials")]
    QueueAttributes { queue_url: String, cause: String },
    #[error("the batching window ({window_ms} ms) is more than half the visibility timeout ({visibility_s} s): a batch would have too little time left to post before its messages reappear. Shorten --batching-window-ms or raise --visibility-timeout-secs")]
    WindowTooLong { window_ms: u128, visibility_s: u64 },
    #[error("--batching-window-ms {window_ms} is above 300000 (the event source mapping's maximum of 300 s)")]
    WindowOutOfRange { window_ms: u128 },
    #[error("a visibility timeout of {seconds} s is outside SQS's 1 to 43200 s: set --visibility-timeout-secs (or the queue's VisibilityTimeout) within it")]
    VisibilityOutOfRange { seconds: u64 },
    #[error("{failed} of the runner's workers failed ({why}); the others finished the batches in hand and the runner stopped. Messages in the failed batch return after their visibility timeout. Report this with the log")]
    WorkerFailed { failed: usize, why: String },
}

/// The longest single ReceiveMessage long poll SQS allows.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Backoff after a failed ReceiveMessage, so an unreachable queue is not hammered.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// The longest batching window the event source mapping allows.
const MAX_BATCHING_WINDOW: Duration = Duration::from_secs(300);
/// SQS's visibility timeout range.
const VISIBILITY_RANGE_SECONDS: std::ops::RangeInclusive<u64> = 1..=43_200;
/// A batch is answered within this share of the visibility timeout.
const ANSWER_WITHIN: f64 = 0.8;
/// Times a batch in hand has its messages hidden again, at most (the batch's
/// own deadline ends it long before).
const MAX_EXTENSIONS: u32 = 20;
/// Tries of a DeleteMessageBatch entry.
const DELETE_TRIES: u32 = 3;

/// Checks the options against the queue's visibility timeout: the batching
/// window must leave a batch time to post before its messages reappear.
pub fn check_timing(batching_window: Duration, visibility: Duration) -> Result<(), RunnerError> {
    if batching_window > MAX_BATCHING_WINDOW {
        return Err(RunnerError::WindowOutOfRange {
            window_ms: batching_window.as_millis(),
        });
    }
    if !VISIBILITY_RANGE_SECONDS.contains(&visibility.as_secs()) {
        return Err(RunnerError::VisibilityOutOfRange {
            seconds: visibility.as_secs(),
        });
    }
    if batching_window > visibility / 2 {
        return Err(RunnerError::WindowTooLong {
            window_ms: batching_window.as_millis(),
            visibility_s: visibility.as_secs(),
        });
    }
    Ok(())
}

/// Polls `options.queue_url` until `stop` turns true (or the runner is idle for
/// `exit_when_idle`). A batch in hand when `stop` arrives is finished first.
pub async fn run_queue<T, D>(
    consumer: Arc<Consumer<T, D>>,
    sqs: aws_sdk_sqs::Client,
    options: RunnerOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<Arc<RunnerTally>, RunnerError>
where
    T: Transport + 'static,
    D: DeadLetters + 'static,
{
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&options.queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| RunnerError::QueueAttributes {
            queue_url: options.queue_url.clone(),
            cause: sfn_mackerel_sqs::error_text::call_failed("GetQueueAttributes", &error),
        })?;
    let attributes = attributes.attributes().cloned().unwrap_or_default();
    let visibility = options.visibility_timeout.unwrap_or_else(|| {
        Duration::from_secs(
            attributes
                .get(&QueueAttributeName::VisibilityTimeout)
                .and_then(|v| v.parse().ok())
                .unwrap_or(30),
        )
    });
    check_timing(options.batching_window, visibility)?;
    let queue_arn = attributes.get(&QueueAttributeName::QueueArn).cloned();
    tracing::info!(
        queue_url = %options.queue_url,
        batch_size = options.batch_size,
        batching_window_ms = options.batching_window.as_millis() as u64,
        concurrency = options.concurrency,
        visibility_timeout_s = visibility.as_secs(),
        "runner polling"
    );

    // Workers stop when asked to, or when one of them failed.
    let (halt, halted) = watch::channel(false);
    let halt = Arc::new(halt);
    let forward = {
        let halt = halt.clone();
        tokio::spawn(async move {
            if stop.wait_for(|stopping| *stopping).await.is_ok() {
                let _ = halt.send(true);
            }
        })
    };
    let tally = Arc::new(RunnerTally::default());
    let last_message_at = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut workers = JoinSet::new();
    for _ in 0..options.concurrency.max(1) {
        let worker = Worker {
            consumer: consumer.clone(),
            sqs: sqs.clone(),
            options: options.clone(),
            visibility,
            queue_arn: queue_arn.clone(),
            tally: tally.clone(),
            last_message_at: last_message_at.clone(),
        };
        workers.spawn(worker.run(halted.clone()));
    }
    let mut failures: Vec<String> = Vec::new();
    while let Some(ended) = workers.join_next().await {
        if let Err(error) = ended {
            let why = if error.is_panic() {
                panic_text(error.into_panic())
            } else {
                error.to_string()
            };
            tracing::error!(error = %why, "a runner worker failed; stopping after the batches in hand");
            failures.push(why);
            let _ = halt.send(true);
        }
    }
    forward.abort();
    tracing::info!(
        batches = tally.batches.load(Ordering::Relaxed),
        received = tally.received.load(Ordering::Relaxed),
        deleted = tally.deleted.load(Ordering::Relaxed),
        left_for_retry = tally.left_for_retry.load(Ordering::Relaxed),
        delete_failures = tally.delete_failures.load(Ordering::Relaxed),
        "runner stopped"
    );
    match failures.first() {
        None => Ok(tally),
        Some(why) => Err(RunnerError::WorkerFailed {
            failed: failures.len(),
            why: why.clone(),
        }),
    }
}

/// The message of a panic, for the one line that explains the stop.
fn panic_text(payload: Box<dyn Any + Send>) -> String {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {text}")
}

struct Worker<T, D> {
    consumer: Arc<Consumer<T, D>>,
    sqs: aws_sdk_sqs::Client,
    options: RunnerOptions,
    visibility: Duration,
    queue_arn: Option<String>,
    tally: Arc<RunnerTally>,
    last_message_at: Arc<std::sync::Mutex<Instant>>,
}

/// A received message with what is needed to delete it.
struct Held {
    message: InboundMessage,
    receipt: Receipt,
}

/// How to delete a received message, and how often it was received (for debug logs).
struct Receipt {
    handle: String,
    /// SQS `ApproximateReceiveCount`.
    receive_count: String,
}

impl<T: Transport, D: DeadLetters> Worker<T, D> {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() || self.idle_long_enough() {
                return;
            }
            let (batch, started) = self.collect_batch(&mut stop).await;
            if batch.is_empty() {
                continue;
            }
            *self
                .last_message_at
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Instant::now();
            // Finished even when asked to stop: the batch in hand is never dropped.
            self.handle(batch, started).await;
        }
    }

    fn idle_long_enough(&self) -> bool {
        let Some(idle) = self.options.exit_when_idle else {
            return false;
        };
        self.last_message_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            >= idle
    }

    /// Receives until the batch is full or the window after its first message closes.
    /// Asked to stop, it returns what it holds: a receive cut short only leaves its
    /// messages invisible until their visibility timeout, never lost.
    async fn collect_batch(&self, stop: &mut watch::Receiver<bool>) -> (Vec<Held>, Instant) {
        let mut batch: Vec<Held> = Vec::new();
        let mut started = Instant::now();
        let mut window_ends: Option<Instant> = None;
        let visibility_seconds = i32::try_from(self.visibility.as_secs()).unwrap_or(43_200);
        // Bounded: each call takes at least one round trip, and the window or the idle limit ends it.
        for _ in 0..100_000 {
            let wanted = self.options.batch_size - batch.len();
            if wanted == 0 {
                break;
            }
            let wait = match window_ends {
                None => self
                    .options
                    .exit_when_idle
                    .map_or(MAX_WAIT, |idle| idle.min(MAX_WAIT)),
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    left
                }
            };
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&self.options.queue_url)
                .max_number_of_messages(wanted.min(10) as i32)
                .wait_time_seconds(wait.as_secs().min(20) as i32)
                .visibility_timeout(visibility_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names(SOURCE_SENT_TIMESTAMP)
                .send();
            let received = tokio::select! {
                received = receive => received,
                _ = stop.wait_for(|stopping| *stopping) => return (batch, started),
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(error = %sfn_mackerel_sqs::error_text::call_failed("ReceiveMessage", &error), "trying again");
                    tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                    if batch.is_empty() {
                        return (batch, started);
                    }
                    continue;
                }
            };
            if messages.is_empty() {
                if batch.is_empty() {
                    return (batch, started);
                }
                if window_ends.is_none_or(|end| Instant::now() >= end) {
                    break;
                }
                continue;
            }
            if batch.is_empty() {
                started = Instant::now();
                window_ends = Some(started + self.options.batching_window);
            }
            batch.extend(messages.into_iter().filter_map(|m| self.hold(m)));
            if self.options.batching_window.is_zero() {
                break;
            }
        }
        (batch, started)
    }

    fn hold(&self, message: Message) -> Option<Held> {
        let receipt_handle = message.receipt_handle?;
        let id = message.message_id.filter(|id| !id.is_empty())?;
        let attributes: HashMap<MessageSystemAttributeName, String> =
            message.attributes.unwrap_or_default();
        let first_sent_attribute = message
            .message_attributes
            .as_ref()
            .and_then(|a| a.get(SOURCE_SENT_TIMESTAMP))
            .and_then(|v| v.string_value())
            .map(str::to_owned);
        Some(Held {
            message: InboundMessage {
                id,
                body: message.body.unwrap_or_default(),
                sent_at_ms: attributes
                    .get(&MessageSystemAttributeName::SentTimestamp)
                    .and_then(|v| v.parse().ok()),
                first_sent_attribute,
                source_queue_arn: self.queue_arn.clone(),
            },
            receipt: Receipt {
                handle: receipt_handle,
                receive_count: attributes
                    .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                    .cloned()
                    .unwrap_or_default(),
            },
        })
    }

    async fn handle(&self, batch: Vec<Held>, started: Instant) {
        self.tally.batches.fetch_add(1, Ordering::Relaxed);
        self.tally
            .received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        // The batch must be answered before its messages become visible again.
        let deadline = started + self.visibility.mul_f64(ANSWER_WITHIN);
        let (messages, receipts): (Vec<InboundMessage>, Vec<Receipt>) = batch
            .into_iter()
            .map(|held| (held.message, held.receipt))
            .unzip();
        let handles: Vec<String> = receipts.iter().map(|r| r.handle.clone()).collect();
        let work = async {
            let report = self.consumer.handle(&messages, deadline).await;
            if tracing::enabled!(tracing::Level::DEBUG) {
                for ((message, receipt), fate) in messages.iter().zip(&receipts).zip(&report.fates)
                {
                    tracing::debug!(message_id = %message.id, ?fate, receive_count = %receipt.receive_count, body = %message.body.chars().take(80).collect::<String>(), "message handled");
                }
            }
            let done: Vec<String> = handles
                .iter()
                .zip(&report.fates)
                .filter(|(_, fate)| fate.is_done())
                .map(|(handle, _)| handle.clone())
                .collect();
            self.tally
                .left_for_retry
                .fetch_add((handles.len() - done.len()) as u64, Ordering::Relaxed);
            self.delete(done).await;
        };
        tokio::pin!(work);
        tokio::select! {
            () = &mut work => {}
            () = self.keep_hidden(&handles, started) => work.await,
        }
    }

    /// Hides the batch's messages again whenever half the visibility timeout has
    /// passed, while the batch is in hand. Returns after [`MAX_EXTENSIONS`].
    async fn keep_hidden(&self, handles: &[String], received: Instant) {
        let period = (self.visibility / 2).max(Duration::from_secs(1));
        let seconds = i32::try_from(self.visibility.as_secs()).unwrap_or(43_200);
        let mut next = received + period;
        for _ in 0..MAX_EXTENSIONS {
            tokio::time::sleep_until(next).await;
            let results = change_visibility(
                &self.sqs,
                &self.options.queue_url,
                handles,
                seconds,
                CallLimits::SEQUENTIAL,
            )
            .await;
            let failed = results.iter().filter(|r| r.is_err()).count();
            tracing::debug!(
                messages = handles.len(),
                failed,
                "batch still in hand: its messages are hidden again"
            );
            next += period;
        }
    }

    /// Deletes what was handled; an entry whose delete failed is tried again a
    /// few times, then left to come back (at-least-once), counted and logged.
    async fn delete(&self, mut handles: Vec<String>) {
        for attempt in 1..=DELETE_TRIES {
            if handles.is_empty() {
                return;
            }
            let results = delete_messages(
                &self.sqs,
                &self.options.queue_url,
                &handles,
                CallLimits::SEQUENTIAL,
            )
            .await;
            let mut failed = Vec::new();
            let mut last_error = String::new();
            for (handle, result) in handles.into_iter().zip(results) {
                match result {
                    Ok(()) => {
                        self.tally.deleted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(why) => {
                        last_error = why;
                        failed.push(handle);
                    }
                }
            }
            handles = failed;
            if handles.is_empty() {
                return;
            }
            if attempt < DELETE_TRIES {
                tracing::warn!(failed = handles.len(), error = %last_error, "DeleteMessageBatch failed for some messages; trying again");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            } else {
                self.tally
                    .delete_failures
                    .fetch_add(handles.len() as u64, Ordering::Relaxed);
                tracing::error!(failed = handles.len(), error = %last_error, "could not delete handled messages; they will be delivered again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_up_to_half_the_visibility_timeout_is_fine() {
        assert!(check_timing(Duration::from_secs(15), Duration::from_secs(30)).is_ok());
        assert!(check_timing(Duration::ZERO, Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_window_that_leaves_no_time_to_answer_is_refused_with_what_to_change() {
        let error = check_timing(Duration::from_secs(20), Duration::from_secs(30)).unwrap_err();
        assert!(
            error.to_string().contains("--batching-window-ms"),
            "{error}"
        );
    }

    #[test]
    fn timings_outside_what_sqs_and_lambda_allow_are_refused() {
        assert!(matches!(
            check_timing(Duration::from_secs(301), Duration::from_secs(43_200)),
            Err(RunnerError::WindowOutOfRange { .. })
        ));
        assert!(matches!(
            check_timing(Duration::ZERO, Duration::from_secs(u64::MAX)),
            Err(RunnerError::VisibilityOutOfRange { .. })
        ));
        assert!(matches!(
            check_timing(Duration::ZERO, Duration::ZERO),
            Err(RunnerError::VisibilityOutOfRange { .. })
        ));
    }
}
