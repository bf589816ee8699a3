//! One batch, start to end: decode every message on its own, group and chunk
//! the values, post them per service in parallel, park what cannot be posted,
//! and say which messages must come back. Shared by the Lambda function and the
//! local queue runner.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use sfn_mackerel_message::{decode, DecodeContext, Decoded, Rejection, SetAsideReason, TimeWindow};
use tokio::time::Instant;

use crate::api_key::KeyStore;
use crate::chunking::{chunk, Chunk};
use crate::config::Settings;
use crate::delivery::{deliver, ChunkOutcome, RetryPolicy, Transport, TryCount};
use crate::dlq::{DeadLetters, ParkRequest};
use crate::grouping::group;
use crate::inbound::InboundMessage;
use crate::outcome::{dispositions, Disposition, Fate};
use crate::pipeline_metrics::pipeline_figures_body;

/// The consumer with everything it holds across invocations.
pub struct Consumer<T, D> {
    pub settings: Settings,
    pub transport: T,
    pub keys: KeyStore,
    pub dead_letters: D,
    invocations: AtomicU64,
}

/// What happened to a batch: one fate per message, in input order, and the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport {
    pub fates: Vec<Fate>,
    pub summary: BatchSummary,
}

impl BatchReport {
    /// The ids to report as batch item failures.
    pub fn failed_ids<'a>(&self, messages: &'a [InboundMessage]) -> Vec<&'a str> {
        messages
            .iter()
            .zip(&self.fates)
            .filter(|(_, fate)| !fate.is_done())
            .map(|(message, _)| message.id.as_str())
            .collect()
    }
}

/// How one request body ended, with the messages it carried.
struct SentChunk {
    sources: Vec<usize>,
    outcome: ChunkOutcome,
    values: usize,
    count: TryCount,
}

/// The figures logged once per batch (and optionally posted to Mackerel).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSummary {
    pub received: usize,
    pub valid: usize,
    pub set_aside_by_reason: BTreeMap<&'static str, usize>,
    pub values: usize,
    pub values_posted: usize,
    pub requests: u32,
    pub retries: u32,
    pub posted_messages: usize,
    pub parked_messages: usize,
    pub failed_messages: usize,
    /// How old the oldest valid value was when the batch arrived.
    pub oldest_value_age_seconds: Option<i64>,
}

impl<T: Transport, D: DeadLetters> Consumer<T, D> {
    pub fn new(settings: Settings, transport: T, keys: KeyStore, dead_letters: D) -> Self {
        Self {
            settings,
            transport,
            keys,
            dead_letters,
            invocations: AtomicU64::new(0),
        }
    }

    /// Handles a batch that must be answered by `deadline` (the invocation's, or
    /// the runner's visibility timeout).
    pub async fn handle(&self, messages: &[InboundMessage], deadline: Instant) -> BatchReport {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        self.handle_at(messages, deadline, now).await
    }

    /// As [`Self::handle`], with "now" (epoch seconds) given, for tests.
    pub async fn handle_at(
        &self,
        messages: &[InboundMessage],
        deadline: Instant,
        now: i64,
    ) -> BatchReport {
        let generation = self.invocations.fetch_add(1, Ordering::Relaxed) + 1;
        let prepared = prepare(messages, now, &self.settings);
        let mut summary = prepared.summary;

        let policy = RetryPolicy {
            max_attempts: self.settings.max_attempts,
            request_timeout: self.settings.request_timeout,
            backoff_base: self.settings.backoff_base,
            backoff_cap: self.settings.backoff_cap,
            give_up_at: give_up_at(deadline, self.settings.deadline_margin),
            jitter: rand::random::<f64>,
        };
        let delivered: Vec<Vec<SentChunk>> = futures::stream::iter(prepared.requests)
            .map(|(service, chunks)| self.deliver_service(service, chunks, generation, policy))
            .buffer_unordered(self.settings.service_concurrency)
            .collect()
            .await;

        let mut requests: Vec<(Vec<usize>, ChunkOutcome)> = Vec::new();
        for sent in delivered.into_iter().flatten() {
            summary.requests += sent.count.requests;
            summary.retries += sent.count.retries;
            if sent.outcome == ChunkOutcome::Delivered {
                summary.values_posted += sent.values;
            }
            requests.push((sent.sources, sent.outcome));
        }

        let fates = self
            .settle(
                messages,
                dispositions(messages.len(), prepared.rejected, &requests),
            )
            .await;
        for fate in &fates {
            match fate {
                Fate::Posted => summary.posted_messages += 1,
                Fate::Parked(reason) => {
                    summary.parked_messages += 1;
                    *summary
                        .set_aside_by_reason
                        .entry(reason.code())
                        .or_default() += 1;
                }
                Fate::Failed => summary.failed_messages += 1,
            }
        }
        self.post_pipeline_figures(&summary, now, generation, policy)
            .await;
        log_summary(&summary);
        BatchReport { fates, summary }
    }

    /// Posts one service's chunks in order. A refusal that holds for the whole
    /// service (unknown service, refused key) is applied to the remaining chunks
    /// without asking again.
    async fn deliver_service(
        &self,
        service: String,
        chunks: Vec<Chunk>,
        generation: u64,
        policy: RetryPolicy,
    ) -> Vec<SentChunk> {
        let mut results = Vec::with_capacity(chunks.len());
        let mut service_refusal: Option<ChunkOutcome> = None;
        for chunk in chunks {
            let (outcome, count) = match &service_refusal {
                Some(refusal) => (refusal.clone(), TryCount::default()),
                None => {
                    deliver(
                        &self.transport,
                        &self.keys,
                        generation,
                        &service,
                        &chunk.body,
                        &policy,
                    )
                    .await
                }
            };
            if let ChunkOutcome::Permanent { reason, .. } = &outcome {
                if matches!(
                    reason,
                    SetAsideReason::UnknownService | SetAsideReason::MackerelForbidden
                ) {
                    service_refusal = Some(outcome.clone());
                }
            }
            results.push(SentChunk {
                sources: chunk.sources,
                outcome,
                values: chunk.values,
                count,
            });
        }
        results
    }

    /// Parks what must be parked; a message that could not be parked fails instead,
    /// so nothing is deleted that is neither posted nor parked.
    async fn settle(&self, messages: &[InboundMessage], plan: Vec<Disposition>) -> Vec<Fate> {
        let to_park: Vec<(usize, &Rejection)> = plan
            .iter()
            .enumerate()
            .filter_map(|(position, d)| match d {
                Disposition::Park(rejection) => Some((position, rejection)),
                _ => None,
            })
            .collect();
        let requests: Vec<ParkRequest> = to_park
            .iter()
            .map(|(position, rejection)| ParkRequest {
                message: &messages[*position],
                reason: rejection.reason,
                detail: &rejection.detail,
            })
            .collect();
        let parked = if requests.is_empty() {
            Vec::new()
        } else {
            self.dead_letters.park(&requests).await
        };

        let mut fates: Vec<Fate> = plan
            .iter()
            .map(|d| match d {
                Disposition::Posted => Fate::Posted,
                Disposition::Retry => Fate::Failed,
                Disposition::Park(rejection) => Fate::Parked(rejection.reason),
            })
            .collect();
        for ((position, rejection), result) in to_park.iter().zip(parked) {
            let id = &messages[*position].id;
            match result {
                Ok(()) => tracing::warn!(
                    message_id = %id,
                    reason = rejection.reason.code(),
                    detail = %rejection.detail,
                    "message set aside in the DLQ"
                ),
                Err(why) => {
                    tracing::error!(
                        message_id = %id,
                        reason = rejection.reason.code(),
                        error = %why,
                        "could not park the message in the DLQ; it returns to the queue instead"
                    );
                    fates[*position] = Fate::Failed;
                }
            }
        }
        fates
    }

    /// Posts the batch's own figures when configured: one try, never affecting the batch.
    async fn post_pipeline_figures(
        &self,
        summary: &BatchSummary,
        now: i64,
        generation: u64,
        policy: RetryPolicy,
    ) {
        let Some(target) = &self.settings.pipeline_metrics else {
            return;
        };
        let body = pipeline_figures_body(&target.prefix, summary, now);
        let one_try = RetryPolicy {
            max_attempts: 1,
            request_timeout: policy.request_timeout.min(Duration::from_secs(3)),
            ..policy
        };
        let (outcome, _) = deliver(
            &self.transport,
            &self.keys,
            generation,
            &target.service,
            &body,
            &one_try,
        )
        .await;
        if outcome != ChunkOutcome::Delivered {
            tracing::warn!(service = %target.service, outcome = ?outcome, "could not post the pipeline's own figures");
        }
    }
}

/// When tries must stop: the deadline less the margin, but never a margin of more
/// than a quarter of the time left, so a short timeout still leaves time to post.
fn give_up_at(deadline: Instant, margin: Duration) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline
        .checked_sub(margin.min(left / 4))
        .unwrap_or(deadline)
}

/// A batch decoded, grouped and cut into request bodies: all the work that needs no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedBatch {
    /// Messages that cannot be posted, by batch position.
    pub rejected: Vec<(usize, Rejection)>,
    /// Request bodies per service, services in name order.
    pub requests: Vec<(String, Vec<Chunk>)>,
    /// The figures known before posting.
    pub summary: BatchSummary,
}

/// Decodes every message on its own, groups the valid ones per service, merges
/// same-minute values and cuts the bodies. Pure: `now` is epoch seconds.
pub fn prepare(messages: &[InboundMessage], now: i64, settings: &Settings) -> PreparedBatch {
    let window = TimeWindow::around(now, settings.max_future_seconds);
    let mut valid: Vec<(usize, Decoded)> = Vec::with_capacity(messages.len());
    let mut rejected: Vec<(usize, Rejection)> = Vec::new();
    for (position, message) in messages.iter().enumerate() {
        let context = DecodeContext {
            sent_at: message.sent_at_seconds(),
            window,
        };
        match decode(&message.body, &context) {
            Ok(decoded) => valid.push((position, decoded)),
            Err(rejection) => rejected.push((position, rejection)),
        }
    }
    let summary = BatchSummary {
        received: messages.len(),
        valid: valid.len(),
        values: valid.iter().map(|(_, d)| d.values.len()).sum(),
        oldest_value_age_seconds: valid
            .iter()
            .flat_map(|(_, d)| d.values.iter().map(|v| now - v.time))
            .max(),
        ..BatchSummary::default()
    };
    let requests = group(&valid, settings.merge_rule)
        .iter()
        .map(|s| {
            (
                s.service.to_owned(),
                chunk(&s.points, settings.max_request_bytes),
            )
        })
        .collect();
    PreparedBatch {
        rejected,
        requests,
        summary,
    }
}

fn log_summary(summary: &BatchSummary) {
    let set_aside: Vec<String> = summary
        .set_aside_by_reason
        .iter()
        .map(|(reason, count)| format!("{reason}={count}"))
        .collect();
    tracing::info!(
        received = summary.received,
        valid = summary.valid,
        set_aside = summary.parked_messages,
        set_aside_by_reason = %set_aside.join(","),
        values = summary.values,
        values_posted = summary.values_posted,
        requests = summary.requests,
        retries = summary.retries,
        failed = summary.failed_messages,
        oldest_value_age_seconds = summary.oldest_value_age_seconds.unwrap_or(0),
        "batch done"
    );
}
