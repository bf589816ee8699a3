//! `flood`, the sending side of a load test: batches of 10 from the load
//! generator go out with SendMessageBatch, at most `--concurrency` calls in
//! flight and paced to `--rate`; each message is written to the manifest with
//! whether SQS took it, and the run ends with throughput and latency figures.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use sfn_mackerel_sqs::batch::{send_messages, CallLimits, EntryResult, Outgoing};

use crate::aws::Sqs;
use crate::cli::FloodArgs;
use crate::clock::now_seconds;
use crate::error::{exit, CliError};
use crate::interrupt::Interrupt;
use crate::load_shape::{Generator, LoadShape, PlannedMessage};
use crate::manifest::{self, Header, Kind, ManifestWriter};
use crate::output::{self, Outcome, Report, Table};
use crate::pacing::{Pacer, Percentiles};
use crate::queue::queue_info;

/// SendMessageBatch takes at most 10 entries.
const BATCH: u64 = 10;

/// The load shape the flags describe.
pub fn shape_from_args(args: &FloodArgs, now: i64, seed: u64, load_test_id: String) -> LoadShape {
    let services = if args.service.is_empty() {
        (1..=args.services)
            .map(|i| format!("{}-{i:02}", args.service_prefix))
            .collect()
    } else {
        args.service.clone()
    };
    LoadShape {
        load_test_id,
        services,
        jobs: args.jobs,
        executions: args.executions,
        failure_fraction: args.failure_fraction,
        malformed_fraction: args.malformed_fraction,
        too_old_fraction: args.too_old_fraction,
        spread_minutes: args.spread_minutes,
        seed,
        now,
    }
}

/// What one SendMessageBatch call did: which messages SQS took, why it
/// refused the others, and how long the call took.
struct BatchResult {
    messages: Vec<PlannedMessage>,
    results: Vec<EntryResult>,
    latency: Duration,
}

impl BatchResult {
    /// A call that took nothing: the endpoint may be dead.
    fn took_nothing(&self) -> bool {
        self.results.iter().all(Result::is_err)
    }
}

async fn send_batch(
    sqs: &Sqs,
    url: &str,
    pacer: &Pacer,
    messages: Vec<PlannedMessage>,
) -> BatchResult {
    pacer.wait(messages.len()).await;
    let bodies: Vec<Outgoing> = messages
        .iter()
        .map(|m| Outgoing::new(m.body.clone()))
        .collect();
    let started = Instant::now();
    let results = send_messages(&sqs.client, url, &bodies, CallLimits::SEQUENTIAL).await;
    BatchResult {
        messages,
        results,
        latency: started.elapsed(),
    }
}

/// Runs `flood`.
pub async fn run(
    sqs: &Sqs,
    args: &FloodArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, CliError> {
    let now = now_seconds();
    let seed = args.seed.unwrap_or_else(rand::random);
    let load_test_id = format!("lt-{now}-{:04x}", rand::random::<u16>());
    let shape = shape_from_args(args, now, seed, load_test_id.clone());
    shape.check().map_err(CliError::Usage)?;
    if args.rate < 0.0 || !args.rate.is_finite() {
        return Err(CliError::usage(
            "--rate must be 0 (unlimited) or a positive number",
        ));
    }
    if args.count == Some(0) {
        return Err(CliError::usage("--count must be at least 1"));
    }
    if args.dry_run {
        return Ok(Outcome::of(&FloodPreview::of(args.count, shape)));
    }
    queue_info(sqs, &args.queue_url).await?;

    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("flood-{load_test_id}.jsonl")));
    let header = Header {
        format: manifest::FORMAT.to_owned(),
        version: manifest::VERSION,
        load_test_id: load_test_id.clone(),
        created_at: now,
        queue_url: args.queue_url.clone(),
        seed,
        shape: json!({
            "services": shape.services,
            "jobs": shape.jobs,
            "executions": shape.executions,
            "failure_fraction": shape.failure_fraction,
            "malformed_fraction": shape.malformed_fraction,
            "too_old_fraction": shape.too_old_fraction,
            "spread_minutes": shape.spread_minutes,
            "rate": args.rate,
            "concurrency": args.concurrency,
        }),
    };
    let mut writer = ManifestWriter::create(&manifest_path, &header)?;
    output::note(&format!(
        "flood {load_test_id} (seed {seed}) -> {}; manifest {}",
        args.queue_url,
        manifest_path.display()
    ));

    let bar = output::progress_bar(
        args.count,
        show_progress,
        match args.count {
            Some(_) => "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} sent  {msg}",
            None => "{spinner} [{elapsed_precise}] {pos} sent  {msg}",
        },
    );
    let pacer = Pacer::new((args.rate > 0.0).then_some(args.rate));
    let deadline = args.duration.map(|d| Instant::now() + d);
    let limit = args.count.unwrap_or(u64::MAX);
    let mut generator = Generator::new(shape);
    let mut planned = 0u64;
    let stop = interrupt.clone();
    let batches = std::iter::from_fn(move || {
        if planned >= limit || stop.is_set() || deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let size = (limit - planned).min(BATCH);
        planned += size;
        Some(generator.by_ref().take(size as usize).collect::<Vec<_>>())
    });
    let url = args.queue_url.as_str();
    let pacer_ref = &pacer;
    let mut results = futures::stream::iter(batches)
        .map(|batch| send_batch(sqs, url, pacer_ref, batch))
        .buffer_unordered(args.concurrency as usize);

    let started = Instant::now();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut sent = 0u64;
    let mut failed = 0u64;
    let mut sent_by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut consecutive_failed_calls = 0u32;
    let mut gave_up: Option<String> = None;
    while let Some(result) = results.next().await {
        if result.took_nothing() {
            consecutive_failed_calls += 1;
        } else {
            latencies.push(result.latency);
            consecutive_failed_calls = 0;
        }
        let mut last_error = None;
        for (message, outcome) in result.messages.into_iter().zip(result.results) {
            let mut entry = message.entry;
            entry.sent = outcome.is_ok();
            match outcome {
                Ok(()) => {
                    sent += 1;
                    *sent_by_kind.entry(entry.kind.name()).or_default() += 1;
                }
                Err(why) => {
                    failed += 1;
                    *errors.entry(why.clone()).or_default() += 1;
                    last_error = Some(why);
                }
            }
            writer.write(&entry)?;
        }
        bar.set_position(sent + failed);
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{:.0} msg/s, {failed} failed",
            sent as f64 / elapsed
        ));
        // A dead endpoint would otherwise fail every remaining batch one by one.
        if consecutive_failed_calls >= 3 * args.concurrency.max(1) {
            gave_up = last_error;
            break;
        }
    }
    drop(results);
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let manifest_path = writer.finish()?;

    let report = FloodReport {
        command: "flood",
        load_test_id,
        seed,
        queue_url: args.queue_url.clone(),
        manifest: manifest_path,
        requested: args.count,
        sent,
        failed_sends: failed,
        sent_by_kind,
        elapsed_seconds: elapsed.as_secs_f64(),
        achieved_rate: sent as f64 / elapsed.as_secs_f64().max(0.001),
        target_rate: (args.rate > 0.0).then_some(args.rate),
        concurrency: args.concurrency,
        batch_calls: latencies.len(),
        latency_ms: Percentiles::of(&mut latencies),
        errors,
        stopped_early: gave_up,
        failed_calls_in_a_row: consecutive_failed_calls,
        interrupted: interrupt.is_set(),
    };
    Ok(Outcome::of(&report))
}

/// What a flood sent, how fast, and what SQS refused.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    pub command: &'static str,
    pub load_test_id: String,
    pub seed: u64,
    pub queue_url: String,
    pub manifest: PathBuf,
    pub requested: Option<u64>,
    pub sent: u64,
    pub failed_sends: u64,
    pub sent_by_kind: BTreeMap<&'static str, u64>,
    pub elapsed_seconds: f64,
    pub achieved_rate: f64,
    pub target_rate: Option<f64>,
    pub concurrency: u32,
    /// SendMessageBatch calls that SQS took at least one message of.
    pub batch_calls: usize,
    pub latency_ms: Percentiles,
    /// Every reason a message was refused for, with how many it refused.
    pub errors: BTreeMap<String, u64>,
    /// The last error, when the flood gave up on an endpoint that took nothing.
    pub stopped_early: Option<String>,
    #[serde(skip)]
    pub failed_calls_in_a_row: u32,
    pub interrupted: bool,
}

impl fmt::Display for FloodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "load test {} (seed {}) to {}\nsent {} messages, {} failed sends, in {:.1}s: {:.0} msg/s ({} SendMessageBatch calls, concurrency {})",
            self.load_test_id,
            self.seed,
            self.queue_url,
            self.sent,
            self.failed_sends,
            self.elapsed_seconds,
            self.achieved_rate,
            self.batch_calls,
            self.concurrency,
        )?;
        let mut kinds = Table::new(&["kind", "sent"]);
        for kind in [Kind::Valid, Kind::Malformed, Kind::TooOld] {
            let count = self.sent_by_kind.get(kind.name()).copied().unwrap_or(0);
            kinds.row(vec![kind.name().to_owned(), count.to_string()]);
        }
        let latency = &self.latency_ms;
        writeln!(
            f,
            "{}\nSendMessageBatch latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\nmanifest: {}",
            kinds.render(),
            latency.p50_ms,
            latency.p90_ms,
            latency.p99_ms,
            latency.max_ms,
            self.manifest.display()
        )?;
        for (error, count) in self.errors.iter().take(5) {
            writeln!(f, "error ({count}x): {error}")?;
        }
        if let Some(error) = &self.stopped_early {
            writeln!(
                f,
                "stopped early: {} calls in a row failed; last error: {error}",
                self.failed_calls_in_a_row
            )?;
        }
        if self.interrupted {
            writeln!(
                f,
                "interrupted: the manifest lists what was sent before the stop"
            )?;
        }
        write!(
            f,
            "next: let the consumer drain the queue, then `sfn-mackerel verify --manifest {}`",
            self.manifest.display()
        )
    }
}

impl Report for FloodReport {
    fn exit_code(&self) -> u8 {
        if self.stopped_early.is_some() && self.sent == 0 {
            exit::UNAVAILABLE
        } else if self.failed_sends > 0 {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
}

/// What a flood would send: the first messages' kinds and a sample of each.
#[derive(Debug, Clone, Serialize)]
pub struct FloodPreview {
    pub command: &'static str,
    pub dry_run: bool,
    pub previewed: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub samples: BTreeMap<&'static str, String>,
    pub services: Vec<String>,
}

impl FloodPreview {
    /// The first `count` (at most 10,000; 1,000 by default) messages of the shape.
    pub fn of(count: Option<u64>, shape: LoadShape) -> Self {
        let previewed = count.unwrap_or(1_000).min(10_000);
        let services = shape.services.clone();
        let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut samples: BTreeMap<&'static str, String> = BTreeMap::new();
        for planned in Generator::new(shape).take(previewed as usize) {
            let kind = planned.entry.kind.name();
            *by_kind.entry(kind).or_default() += 1;
            samples.entry(kind).or_insert(planned.body);
        }
        Self {
            command: "flood",
            dry_run: true,
            previewed,
            by_kind,
            samples,
            services,
        }
    }
}

impl fmt::Display for FloodPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dry run: nothing sent. The first {} messages would be:",
            self.previewed
        )?;
        let mut table = Table::new(&["kind", "messages", "sample body"]);
        for (kind, count) in &self.by_kind {
            table.row(vec![
                (*kind).to_owned(),
                count.to_string(),
                output::shorten(
                    self.samples.get(kind).map(String::as_str).unwrap_or(""),
                    120,
                ),
            ]);
        }
        write!(
            f,
            "{}\nservices: {}",
            table.render(),
            self.services.join(", ")
        )
    }
}

impl Report for FloodPreview {}
