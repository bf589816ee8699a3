//! Posting one service's values when some of them are job statuses, so that every
//! delivered failure opens its job's alert: read what Mackerel holds for each
//! status series, merge the graph with it, post the values, then write each alert
//! series' steps at delivery time (the plan is `alerting`'s, the I/O is here).
//!
//! A message that carried a status is posted only when its alert steps were
//! written too; otherwise it comes back, and its redelivery reads, merges and
//! writes again (a failure is never deleted before its alert was evaluated).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use sfn_mackerel_message::read_windows::read_windows;
use sfn_mackerel_message::status::alert_series_of;
use tokio::time::Instant;

use crate::alerting::{plan_status_writes, StatusPoint};
use crate::api_key::KeyStore;
use crate::chunking::{body_of_units, pack};
use crate::delivery::{
    deliver_built, ChunkOutcome, RetryPolicy, SeriesRange, Transport, MIN_REQUEST_TIME,
};
use crate::grouping::{Point, ServicePoints, Unit};
use crate::posting::{post_service, SentChunk, ServiceDelivery};

/// How many reads of one service run at the same time.
const READ_CONCURRENCY: usize = 4;

/// Reads end within this fraction of the time a batch has left (1/4).
const READ_SHARE_OF_THE_BATCH: u32 = 4;

/// "Now" for a batch: the epoch second it started at, moved on by the monotonic
/// clock, so an alert written after long retries is stamped when it is written.
#[derive(Debug, Clone, Copy)]
pub struct BatchClock {
    pub started_at: i64,
    pub started: Instant,
}

impl BatchClock {
    pub fn now(&self) -> i64 {
        self.started_at + self.started.elapsed().as_secs() as i64
    }
}

/// What a service's status posting needs besides the points.
pub struct StatusPosting<'c> {
    pub keys: &'c KeyStore,
    pub generation: u64,
    pub policy: &'c RetryPolicy,
    pub max_request_bytes: usize,
    /// Reads go this far past "now": values may be stamped up to this far ahead.
    pub max_future_seconds: i64,
    pub clock: BatchClock,
}

/// What posting a service with status series did, beyond [`ServiceDelivery`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusFigures {
    pub reads: u32,
    pub failed_reads: u32,
    pub alert_values_posted: usize,
}

/// One status series of the batch.
struct BatchSeries<'a> {
    name: &'a str,
    alert_name: String,
    /// Merged per minute, oldest first.
    points: Vec<StatusPoint>,
    /// The messages that carried any of its points.
    sources: Vec<usize>,
}

/// Posts a service's points; with `status` (the alerting guarantee on), its
/// status series are read and merged first and their alert steps written after.
pub async fn post_with_statuses<'a>(
    transport: &impl Transport,
    mut points: ServicePoints<'a>,
    posting: &StatusPosting<'_>,
) -> (ServiceDelivery, StatusFigures) {
    let series = status_series(&points);
    let mut figures = StatusFigures::default();
    let held = read_held(transport, points.service, &series, posting, &mut figures).await;
    let mut alert_steps: Vec<Vec<f64>> = Vec::with_capacity(series.len());
    let mut graph: HashMap<(&str, i64), f64> = HashMap::new();
    for (one, held) in series.iter().zip(&held) {
        let writes = plan_status_writes(&one.points, held.as_deref());
        for planned in &writes.graph {
            graph.insert((one.name, planned.minute()), planned.value);
        }
        alert_steps.push(writes.alert_steps);
    }
    set_graph_values(&mut points, &graph);
    let chunks = pack(&points, posting.max_request_bytes);
    let mut delivery = post_service(
        transport,
        posting.keys,
        posting.generation,
        &points,
        chunks,
        posting.policy,
    )
    .await;
    if series.is_empty() {
        return (delivery, figures);
    }
    if let Some(refusal) = delivery
        .chunks
        .iter()
        .map(|sent| &sent.outcome)
        .find(|outcome| outcome.holds_for_the_service())
        .cloned()
    {
        // The same refusal would meet the alert posts: their messages share it.
        delivery.chunks.push(SentChunk {
            sources: all_sources(&series),
            outcome: refusal,
            values: 0,
            units: Vec::new(),
        });
        return (delivery, figures);
    }
    // Step k of every series that has one, in one request per step; a series'
    // next step only after its previous one was delivered.
    let mut written: Vec<bool> = vec![true; series.len()];
    let steps = alert_steps.iter().map(Vec::len).max().unwrap_or(0);
    for step in 0..steps {
        let due: Vec<usize> = (0..series.len())
            .filter(|&index| alert_steps[index].len() > step)
            .collect();
        let (taking, held_back): (Vec<usize>, Vec<usize>) =
            due.into_iter().partition(|&index| written[index]);
        // A series whose earlier step was not written takes no later one; its
        // messages come back (the earlier step's failure already says so, but
        // a message may also have carried other series).
        for &index in &held_back {
            delivery.chunks.push(SentChunk {
                sources: series[index].sources.clone(),
                outcome: ChunkOutcome::GaveUp {
                    detail: "the alert's earlier step was not written".to_owned(),
                },
                values: 0,
                units: Vec::new(),
            });
        }
        if taking.is_empty() {
            break;
        }
        let units_at = |at: i64| -> Vec<Unit<'_>> {
            taking
                .iter()
                .map(|&index| Unit {
                    points: vec![Point {
                        name: &series[index].alert_name,
                        time: at,
                        value: alert_steps[index][step],
                        sources: series[index].sources.clone(),
                    }],
                    sources: series[index].sources.clone(),
                })
                .collect()
        };
        // Its bodies are not split on a refusal as values are: an alert point
        // is a valid name, a 0 or a 1, and the time of the try.
        let sent = post_alert_step(transport, points.service, &units_at, posting).await;
        delivery.count.requests += sent.count.requests;
        delivery.count.retries += sent.count.retries;
        for (unit, &index) in taking.iter().enumerate() {
            // Its alert point is unit `unit`, alone in its unit, so never cut.
            let delivered = sent.chunks.iter().any(|chunk| {
                chunk.units.contains(&unit) && chunk.outcome == ChunkOutcome::Delivered
            });
            written[index] = delivered;
            if delivered {
                figures.alert_values_posted += 1;
            }
        }
        delivery.chunks.extend(
            sent.chunks
                .into_iter()
                .map(|chunk| SentChunk { values: 0, ..chunk }),
        );
    }
    (delivery, figures)
}

/// Posts one step of the alert series: one unit per series, packed once, each
/// body built anew for every try so that its points are stamped when the try
/// starts (a point stamped before a long backoff could arrive older than one
/// another consumer wrote meanwhile, and Mackerel would not evaluate it).
async fn post_alert_step<'u>(
    transport: &impl Transport,
    service: &str,
    units_at: &(impl Fn(i64) -> Vec<Unit<'u>> + Sync),
    posting: &StatusPosting<'_>,
) -> ServiceDelivery {
    let planned = units_at(posting.clock.now());
    let alerts = ServicePoints {
        service,
        series_groups: (0..planned.len()).map(|unit| unit..unit + 1).collect(),
        units: planned,
    };
    let mut delivery = ServiceDelivery::default();
    let mut service_refusal: Option<ChunkOutcome> = None;
    for chunk in pack(&alerts, posting.max_request_bytes) {
        let outcome = match &service_refusal {
            Some(refusal) => refusal.clone(),
            None => {
                let body_for_try =
                    || Cow::Owned(body_of_units(&units_at(posting.clock.now()), &chunk.units).body);
                let (outcome, count) = deliver_built(
                    transport,
                    posting.keys,
                    posting.generation,
                    service,
                    body_for_try,
                    posting.policy,
                )
                .await;
                delivery.count.requests += count.requests;
                delivery.count.retries += count.retries;
                outcome
            }
        };
        if outcome.holds_for_the_service() {
            service_refusal = Some(outcome.clone());
        }
        delivery.chunks.push(SentChunk {
            sources: chunk.sources,
            outcome,
            values: 0,
            units: chunk.units,
        });
    }
    delivery
}

/// The status series among a service's points, by name. A series' messages are
/// those of every unit holding one of its points: a unit is delivered or
/// returned whole (see `grouping`), and its alert steps are part of it.
fn status_series<'a>(points: &ServicePoints<'a>) -> Vec<BatchSeries<'a>> {
    let mut by_name: BTreeMap<&'a str, BatchSeries<'a>> = BTreeMap::new();
    for unit in &points.units {
        for point in &unit.points {
            let Some(alert_name) = alert_series_of(point.name) else {
                continue;
            };
            let one = by_name.entry(point.name).or_insert_with(|| BatchSeries {
                name: point.name,
                alert_name,
                points: Vec::new(),
                sources: Vec::new(),
            });
            one.points.push(StatusPoint {
                time: point.time,
                value: point.value,
            });
            one.sources.extend_from_slice(&unit.sources);
        }
    }
    by_name
        .into_values()
        .map(|mut one| {
            one.points.sort_by_key(StatusPoint::minute);
            one.sources.sort_unstable();
            one.sources.dedup();
            one
        })
        .collect()
}

fn all_sources(series: &[BatchSeries<'_>]) -> Vec<usize> {
    let mut sources: Vec<usize> = series.iter().flat_map(|one| one.sources.clone()).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
}

/// Reads what each series holds from its oldest minute in the batch on (in
/// windows Mackerel answers at one-minute resolution); `None` for a series
/// whose read failed or found no time (then the batch alone decides, which the
/// README states). Reads are optional, so they get at most a quarter of the
/// batch's time: the values must still be posted after them.
async fn read_held(
    transport: &impl Transport,
    service: &str,
    series: &[BatchSeries<'_>],
    posting: &StatusPosting<'_>,
    figures: &mut StatusFigures,
) -> Vec<Option<Vec<StatusPoint>>> {
    if series.is_empty() {
        return Vec::new();
    }
    let key = posting.keys.current().await;
    let reads_by = {
        let left = posting
            .policy
            .give_up_at
            .saturating_duration_since(Instant::now());
        Instant::now() + left / READ_SHARE_OF_THE_BATCH
    };
    let to = posting.clock.now() + posting.max_future_seconds + 60;
    let reads: Vec<(usize, SeriesRange)> = series
        .iter()
        .enumerate()
        .flat_map(|(index, one)| {
            let from = one.points.first().map_or(to, |p| p.minute() * 60);
            read_windows(from, to)
                .into_iter()
                .map(move |(from, to)| (index, SeriesRange { from, to }))
        })
        .collect();
    let answers: Vec<(usize, bool, Result<Vec<StatusPoint>, String>)> =
        futures::stream::iter(reads)
            .map(|(index, range)| {
                let key = &key;
                let name = series[index].name;
                async move {
                    let left = reads_by.saturating_duration_since(Instant::now());
                    if left < MIN_REQUEST_TIME {
                        return (index, false, Err("no time left to read".to_owned()));
                    }
                    let timeout = posting.policy.request_timeout.min(left);
                    let read = transport
                        .read_series(service, name, range, key, timeout)
                        .await
                        .map(|points| held_within(points, range));
                    (index, true, read)
                }
            })
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
    let mut held: Vec<Option<Vec<StatusPoint>>> = vec![Some(Vec::new()); series.len()];
    for (index, tried, answer) in answers {
        if tried {
            figures.reads += 1;
        }
        match (answer, &mut held[index]) {
            (Ok(points), Some(all)) => all.extend(points),
            (Ok(_), None) => {}
            (Err(why), slot) => {
                if tried {
                    figures.failed_reads += 1;
                }
                if slot.is_some() {
                    tracing::warn!(service, series = series[index].name, error = %why, "could not read what Mackerel holds for a job's status; this batch alone decides its alert");
                }
                *slot = None;
            }
        }
    }
    held
}

/// What a read may contribute: points inside the range asked for, as statuses
/// (a server's 7 or 1e300 is a failure, not a value to post again).
fn held_within(points: Vec<StatusPoint>, range: SeriesRange) -> Vec<StatusPoint> {
    points
        .into_iter()
        .filter(|point| (range.from..=range.to).contains(&point.time))
        .map(|point| StatusPoint {
            time: point.time,
            value: if point.is_failure() { 1.0 } else { 0.0 },
        })
        .collect()
}

/// Writes the planned graph values back into the service's points, in one pass.
fn set_graph_values(points: &mut ServicePoints<'_>, graph: &HashMap<(&str, i64), f64>) {
    for point in points
        .units
        .iter_mut()
        .flat_map(|unit| unit.points.iter_mut())
    {
        if let Some(value) = graph.get(&(point.name, point.minute())) {
            point.value = *value;
        }
    }
}
