//! Running the consumer outside Lambda: long-poll a queue the way the Lambda
//! event source mapping does, hand each batch to the same handler, delete what
//! was posted or parked, and leave the failures to their visibility timeout (so
//! the queue's redrive policy moves them to the DLQ after maxReceiveCount).
//! This is how the demo and the end-to-end tests run the pipeline, and how the
//! consumer runs on a container platform.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use tokio::sync::watch;
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
    /// The queue's visibility timeout; read from the queue when `None`. A batch
    /// must be answered well within it, or its messages come back while in hand.
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
    pub delete_failures: AtomicU64,
}

/// Why the runner could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("could not read the attributes of queue {queue_url}: {cause}. Check the URL, the endpoint (AWS_ENDPOINT_URL) and the credentials")]
    QueueAttributes { queue_url: String, cause: String },
}

/// The longest single ReceiveMessage long poll SQS allows.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Backoff after a failed ReceiveMessage, so an unreachable queue is not hammered.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Polls `options.queue_url` until `stop` turns true (or the runner is idle for
/// `exit_when_idle`). A batch in hand when `stop` arrives is finished first.
pub async fn run_queue<T, D>(
    consumer: Arc<Consumer<T, D>>,
    sqs: aws_sdk_sqs::Client,
    options: RunnerOptions,
    stop: watch::Receiver<bool>,
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
            cause: aws_sdk_sqs::error::DisplayErrorContext(&error).to_string(),
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
    let queue_arn = attributes.get(&QueueAttributeName::QueueArn).cloned();
    tracing::info!(
        queue_url = %options.queue_url,
        batch_size = options.batch_size,
        batching_window_ms = options.batching_window.as_millis() as u64,
        concurrency = options.concurrency,
        visibility_timeout_s = visibility.as_secs(),
        "runner polling"
    );

    let tally = Arc::new(RunnerTally::default());
    let last_message_at = Arc::new(std::sync::Mutex::new(Instant::now()));
    let workers: Vec<_> = (0..options.concurrency.max(1))
        .map(|_| {
            let worker = Worker {
                consumer: consumer.clone(),
                sqs: sqs.clone(),
                options: options.clone(),
                visibility,
                queue_arn: queue_arn.clone(),
                tally: tally.clone(),
                last_message_at: last_message_at.clone(),
            };
            tokio::spawn(worker.run(stop.clone()))
        })
        .collect();
    for worker in workers {
        if let Err(error) = worker.await {
            tracing::error!(%error, "a runner worker stopped abnormally");
        }
    }
    tracing::info!(
        batches = tally.batches.load(Ordering::Relaxed),
        received = tally.received.load(Ordering::Relaxed),
        deleted = tally.deleted.load(Ordering::Relaxed),
        left_for_retry = tally.left_for_retry.load(Ordering::Relaxed),
        "runner stopped"
    );
    Ok(tally)
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
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send();
            let received = tokio::select! {
                received = receive => received,
                _ = stop.wait_for(|stopping| *stopping) => return (batch, started),
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "ReceiveMessage failed; trying again");
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
        Some(Held {
            message: InboundMessage {
                id,
                body: message.body.unwrap_or_default(),
                sent_at_ms: attributes
                    .get(&MessageSystemAttributeName::SentTimestamp)
                    .and_then(|v| v.parse().ok()),
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
        let deadline = started + self.visibility.mul_f64(0.8);
        let (messages, receipts): (Vec<InboundMessage>, Vec<Receipt>) = batch
            .into_iter()
            .map(|held| (held.message, held.receipt))
            .unzip();
        let report = self.consumer.handle(&messages, deadline).await;
        if tracing::enabled!(tracing::Level::DEBUG) {
            for ((message, receipt), fate) in messages.iter().zip(&receipts).zip(&report.fates) {
                tracing::debug!(message_id = %message.id, ?fate, receive_count = %receipt.receive_count, body = %message.body.chars().take(80).collect::<String>(), "message handled");
            }
        }
        let done: Vec<&Receipt> = receipts
            .iter()
            .zip(&report.fates)
            .filter(|(_, fate)| fate.is_done())
            .map(|(receipt, _)| receipt)
            .collect();
        self.tally
            .left_for_retry
            .fetch_add((receipts.len() - done.len()) as u64, Ordering::Relaxed);
        self.delete(&done).await;
    }

    /// Deletes in groups of ten; a failed delete only means the message comes back
    /// (at-least-once), so it is logged and counted, not retried forever.
    async fn delete(&self, done: &[&Receipt]) {
        for group in done.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = group
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&receipt.handle)
                        .build()
                        .ok()
                })
                .collect();
            let mut attempts = 0;
            loop {
                attempts += 1;
                let result = self
                    .sqs
                    .delete_message_batch()
                    .queue_url(&self.options.queue_url)
                    .set_entries(Some(entries.clone()))
                    .send()
                    .await;
                match result {
                    Ok(output) => {
                        let failed = output.failed().len();
                        self.tally
                            .deleted
                            .fetch_add((group.len() - failed) as u64, Ordering::Relaxed);
                        if failed > 0 {
                            self.tally
                                .delete_failures
                                .fetch_add(failed as u64, Ordering::Relaxed);
                            tracing::warn!(failed, "some handled messages could not be deleted; they will be delivered again");
                        }
                        break;
                    }
                    Err(error) if attempts < 3 => {
                        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "DeleteMessageBatch failed; trying again");
                        tokio::time::sleep(Duration::from_millis(200 * attempts)).await;
                    }
                    Err(error) => {
                        self.tally
                            .delete_failures
                            .fetch_add(group.len() as u64, Ordering::Relaxed);
                        tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "could not delete handled messages; they will be delivered again");
                        break;
                    }
                }
            }
        }
    }
}
