//! One batch, start to end: decode every message on its own, group and pack the
//! values, post them per service in parallel while the messages decoding
//! rejected are parked, park what Mackerel refused, and say which messages must
//! come back. Everything is bounded by the batch's deadline: a message that is
//! neither posted nor parked by then comes back. Shared by the Lambda function
//! and the local queue runner.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use sfn_mackerel_message::status::{is_alert_series, merge_rule_for, ALERT_SUFFIX, STATUS_SUFFIX};
use sfn_mackerel_message::{
    decode_record, DecodeContext, Decoded, Rejection, SetAsideReason, TimeWindow,
};
use tokio::time::Instant;

use crate::api_key::KeyStore;
use crate::chunking::{fits_alone, pack, Chunk};
use crate::config::Settings;
use crate::delivery::{deliver, ChunkOutcome, RetryPolicy, Transport};
use crate::dlq::{DeadLetters, ParkRequest};
use crate::grouping::{group, group_by_rules, Point, ServicePoints};
use crate::inbound::InboundMessage;
use crate::outcome::{dispositions, Disposition, Fate};
use crate::pipeline_metrics::{pipeline_figures_body, MinuteFigures};
use crate::posting::{post_service, ServiceDelivery};
use crate::status_posting::{post_with_statuses, BatchClock, StatusFigures, StatusPosting};
pub use crate::summary::BatchSummary;

/// The consumer with everything it holds across invocations.
pub struct Consumer<T, D> {
    pub settings: Settings,
    pub transport: T,
    pub keys: KeyStore,
    pub dead_letters: D,
    invocations: AtomicU64,
    /// The pipeline's figures of the current minute; posting holds the lock, so
    /// this process's posts of one minute arrive in the order they were summed.
    figures: tokio::sync::Mutex<MinuteFigures>,
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

impl<T: Transport, D: DeadLetters> Consumer<T, D> {
    pub fn new(settings: Settings, transport: T, keys: KeyStore, dead_letters: D) -> Self {
        Self {
            settings,
            transport,
            keys,
            dead_letters,
            invocations: AtomicU64::new(0),
            figures: tokio::sync::Mutex::new(MinuteFigures::default()),
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
        let clock = BatchClock {
            started_at: now,
            started: Instant::now(),
        };
        let prepared = prepare(messages, now, &self.settings);
        let services = prepared.group(&self.settings);
        let mut summary = prepared.summary.clone();
        let policy = RetryPolicy {
            max_attempts: self.settings.max_attempts,
            request_timeout: self.settings.request_timeout,
            backoff_base: self.settings.backoff_base,
            backoff_cap: self.settings.backoff_cap,
            give_up_at: give_up_at(deadline, self.settings.deadline_margin),
            jitter: rand::random::<f64>,
        };
        let park_by = park_by(deadline, self.settings.deadline_margin);

        // What decoding rejected is parked while the posts run.
        let rejected: Vec<(usize, &Rejection)> =
            prepared.rejected.iter().map(|(p, r)| (*p, r)).collect();
        // The futures are made before the stream, so that no closure over the
        // plans' lifetimes ends up in this future's type (it must stay Send).
        let posts: Vec<_> = services
            .into_iter()
            .map(|points| self.post_points(points, generation, &policy, clock))
            .collect();
        let posting = futures::stream::iter(posts)
            .buffer_unordered(self.settings.service_concurrency)
            .collect::<Vec<_>>();
        let (early_parking, delivered) =
            tokio::join!(self.park(messages, &rejected, park_by), posting);

        let mut requests: Vec<(Vec<usize>, ChunkOutcome)> = Vec::new();
        for (service, status) in delivered {
            summary.status_reads += status.reads;
            summary.failed_status_reads += status.failed_reads;
            summary.alert_values_posted += status.alert_values_posted;
            summary.requests += service.count.requests;
            summary.retries += service.count.retries;
            for sent in service.chunks {
                if sent.outcome == ChunkOutcome::Delivered {
                    summary.values_posted += sent.values;
                }
                requests.push((sent.sources, sent.outcome));
            }
        }

        let plan = dispositions(messages.len(), prepared.rejected.clone(), &requests);
        let mut parked_early = vec![false; messages.len()];
        for (position, _) in &early_parking {
            parked_early[*position] = true;
        }
        let refused: Vec<(usize, &Rejection)> = plan
            .iter()
            .enumerate()
            .filter(|(position, _)| !parked_early[*position])
            .filter_map(|(position, d)| match d {
                Disposition::Park(rejection) => Some((position, rejection)),
                _ => None,
            })
            .collect();
        let late_parking = self.park(messages, &refused, park_by).await;

        let mut fates: Vec<Fate> = plan
            .iter()
            .map(|d| match d {
                Disposition::Posted => Fate::Posted,
                Disposition::Retry => Fate::Failed,
                Disposition::Park(rejection) => Fate::Parked(rejection.reason),
            })
            .collect();
        for (position, parked) in early_parking.into_iter().chain(late_parking) {
            if !parked {
                fates[position] = Fate::Failed;
            }
        }
        summary.count_fates(&fates);
        self.post_pipeline_figures(&summary, now, generation, &policy, deadline)
            .await;
        summary.log();
        BatchReport { fates, summary }
    }

    /// Posts one service's points: with the alerting guarantee on, its job
    /// statuses are read and merged first and their alerts written after.
    async fn post_points(
        &self,
        points: ServicePoints<'_>,
        generation: u64,
        policy: &RetryPolicy,
        clock: BatchClock,
    ) -> (ServiceDelivery, StatusFigures) {
        if self.settings.status_alerts {
            let posting = StatusPosting {
                keys: &self.keys,
                generation,
                policy,
                max_request_bytes: self.settings.max_request_bytes,
                max_future_seconds: self.settings.max_future_seconds,
                clock,
            };
            return post_with_statuses(&self.transport, points, &posting).await;
        }
        let chunks = pack(&points, self.settings.max_request_bytes);
        let delivery = post_service(
            &self.transport,
            &self.keys,
            generation,
            &points,
            chunks,
            policy,
        )
        .await;
        (delivery, StatusFigures::default())
    }

    /// Parks `to_park` by `until`; says for each position whether it was parked.
    /// A message that could not be parked comes back instead, so nothing is
    /// deleted that is neither posted nor parked.
    async fn park(
        &self,
        messages: &[InboundMessage],
        to_park: &[(usize, &Rejection)],
        until: Instant,
    ) -> Vec<(usize, bool)> {
        if to_park.is_empty() {
            return Vec::new();
        }
        let requests: Vec<ParkRequest> = to_park
            .iter()
            .map(|(position, rejection)| ParkRequest {
                message: &messages[*position],
                reason: rejection.reason,
                detail: &rejection.detail,
            })
            .collect();
        let results = self.dead_letters.park(&requests, until).await;
        to_park
            .iter()
            .zip(results)
            .map(|((position, rejection), result)| {
                let id = &messages[*position].id;
                match &result {
                    Ok(()) => tracing::warn!(
                        message_id = %id,
                        reason = rejection.reason.code(),
                        detail = %rejection.detail,
                        "message set aside in the DLQ"
                    ),
                    Err(why) => tracing::error!(
                        message_id = %id,
                        reason = rejection.reason.code(),
                        error = %why,
                        "could not park the message in the DLQ; it returns to the queue instead"
                    ),
                }
                (*position, result.is_ok())
            })
            .collect()
    }

    /// Posts the minute's figures when configured: one try, within the time the
    /// batch has left, never affecting the batch.
    async fn post_pipeline_figures(
        &self,
        summary: &BatchSummary,
        now: i64,
        generation: u64,
        policy: &RetryPolicy,
        deadline: Instant,
    ) {
        let Some(target) = &self.settings.pipeline_metrics else {
            return;
        };
        let mut figures = self.figures.lock().await;
        let totals = figures.add(summary, now);
        let left = park_by(deadline, self.settings.deadline_margin)
            .saturating_duration_since(Instant::now());
        let one_try = RetryPolicy {
            max_attempts: 1,
            request_timeout: policy.request_timeout.min(Duration::from_secs(3)).min(left),
            give_up_at: Instant::now() + left,
            ..*policy
        };
        let body = pipeline_figures_body(&target.prefix, &totals, now);
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

/// When parking must be done: a quarter of the margin before the deadline,
/// which leaves the rest of the margin for parking after the posts stop.
fn park_by(deadline: Instant, margin: Duration) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline
        .checked_sub((margin / 4).min(left / 16))
        .unwrap_or(deadline)
}

/// A batch decoded: the values to post, what cannot be posted and why, and the
/// figures known before posting. All the work that needs no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedBatch {
    /// Valid messages by batch position.
    pub valid: Vec<(usize, Decoded)>,
    /// Messages that cannot be posted, by batch position.
    pub rejected: Vec<(usize, Rejection)>,
    pub summary: BatchSummary,
}

/// One service's points and the request bodies they are packed into.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan<'a> {
    pub points: ServicePoints<'a>,
    pub chunks: Vec<Chunk>,
}

impl PreparedBatch {
    /// Groups the valid values per service and merges same-minute values, a
    /// job's status by max when the alerting guarantee is on (a status is a
    /// flag: a failure wins its minute). Services in name order.
    pub fn group(&self, settings: &Settings) -> Vec<ServicePoints<'_>> {
        let rule = settings.merge_rule;
        if settings.status_alerts {
            group_by_rules(&self.valid, |name| merge_rule_for(name, rule))
        } else {
            group(&self.valid, rule)
        }
    }

    /// [`Self::group`], then the request bodies packed (before any read).
    pub fn plan(&self, settings: &Settings) -> Vec<ServicePlan<'_>> {
        self.group(settings)
            .into_iter()
            .map(|points| {
                let chunks = pack(&points, settings.max_request_bytes);
                ServicePlan { points, chunks }
            })
            .collect()
    }
}

/// Decodes every message (a job result or an EventBridge event) on its own
/// and sets aside what cannot be posted.
/// Pure: `now` is epoch seconds.
pub fn prepare(messages: &[InboundMessage], now: i64, settings: &Settings) -> PreparedBatch {
    let window = TimeWindow::around(now, settings.max_future_seconds);
    let mut valid: Vec<(usize, Decoded)> = Vec::with_capacity(messages.len());
    let mut rejected: Vec<(usize, Rejection)> = Vec::new();
    let mut events_seen: HashSet<&str> = HashSet::new();
    let mut duplicate_events = 0;
    for (position, message) in messages.iter().enumerate() {
        let decoded = message.first_sent_ms().and_then(|first_sent_ms| {
            let context = DecodeContext {
                sent_at: first_sent_ms.map(|ms| ms.div_euclid(1000)),
                window,
            };
            let decoded = decode_record(&message.body, &context, &settings.events)?;
            check_value_sizes(&decoded, settings.max_request_bytes)?;
            if settings.status_alerts {
                check_no_alert_series(&decoded)?;
            }
            Ok(decoded)
        });
        match decoded {
            Ok(mut decoded) => {
                if !first_copy_of_event(&decoded, &message.body, &mut events_seen) {
                    decoded.values.clear();
                    duplicate_events += 1;
                }
                valid.push((position, decoded))
            }
            Err(rejection) => rejected.push((position, rejection)),
        }
    }
    let summary = BatchSummary {
        received: messages.len(),
        duplicate_events,
        valid: valid.len(),
        values: valid.iter().map(|(_, d)| d.values.len()).sum(),
        oldest_value_age_seconds: valid
            .iter()
            .flat_map(|(_, d)| d.values.iter().map(|v| now - v.time))
            .max(),
        ..BatchSummary::default()
    };
    PreparedBatch {
        valid,
        rejected,
        summary,
    }
}

/// Whether this is the batch's first copy of its EventBridge event (always
/// true for a job-result message). EventBridge delivers at least once, so a
/// rule may put one event on the queue twice: a later copy in the same batch,
/// byte for byte the same event, posts nothing and is done with the first
/// (which carries its values, and comes back if they fail), so `MERGE_RULE=sum`
/// never counts it twice. A copy is recognised by its whole body, not by its
/// `id` alone: a different body under a repeated `id` is another result, and is
/// posted.
fn first_copy_of_event<'a>(decoded: &Decoded, body: &'a str, seen: &mut HashSet<&'a str>) -> bool {
    decoded.event_id.is_none() || seen.insert(body)
}

/// Sets the message aside when it sends a value under a name the consumer
/// writes itself (`<job>.alert`): one arriving stamped ahead of the consumer's
/// own points would keep them from being evaluated.
fn check_no_alert_series(decoded: &Decoded) -> Result<(), Rejection> {
    match decoded
        .values
        .iter()
        .find(|value| is_alert_series(&value.name))
    {
        None => Ok(()),
        Some(value) => Err(Rejection::new(
            SetAsideReason::InvalidMessage,
            format!(
                "{:?} ends in {ALERT_SUFFIX}, a name the consumer writes for each job's alert (STATUS_ALERTS=on): send the job's status as <job>{STATUS_SUFFIX} and rename any other metric",
                value.name
            ),
        )),
    }
}

/// The longest a name can be before its value might not fit a request of the
/// smallest allowed size: the rest of an element (`{"name":"","time":…,"value":…}`
/// with the widest time and number) takes under 80 bytes.
const ELEMENT_WITHOUT_NAME_BYTES: usize = 80;

/// Sets the message aside when one of its values alone would not fit a request:
/// no split can ever post it.
fn check_value_sizes(decoded: &Decoded, max_request_bytes: usize) -> Result<(), Rejection> {
    for value in &decoded.values {
        if value.name.len() + ELEMENT_WITHOUT_NAME_BYTES <= max_request_bytes {
            continue;
        }
        let point = Point {
            name: &value.name,
            time: value.time,
            value: value.value,
            sources: Vec::new(),
        };
        if !fits_alone(&point, max_request_bytes) {
            return Err(Rejection::new(
                SetAsideReason::ValueTooLarge,
                format!(
                    "the value of a metric named with {} characters (starting {:?}) alone exceeds a whole request (MAX_REQUEST_BYTES={max_request_bytes}): shorten the metric name",
                    value.name.len(),
                    value.name.chars().take(40).collect::<String>()
                ),
            ));
        }
    }
    Ok(())
}
