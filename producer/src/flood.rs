//! `flood`, the sending side of a load test: batches of 10 from the load
//! generator go out with SendMessageBatch, at most `--concurrency` calls in
//! flight and paced to `--rate`; each message is written to the manifest with
//! whether SQS took it, and the run ends with throughput and latency figures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;
use serde_json::json;

use crate::aws::{sqs_error, Sqs};
use crate::cli::FloodArgs;
use crate::error::{exit, CliError};
use crate::interrupt::Interrupt;
use crate::load_shape::{Generator, LoadShape, PlannedMessage};
use crate::manifest::{self, Header, Kind, ManifestWriter};
use crate::output::{self, Outcome, Table};
use crate::pacing::{Pacer, Percentiles};
use crate::queue::queue_info;
use crate::send::now_seconds;

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

/// What one SendMessageBatch call did.
struct BatchResult {
    messages: Vec<PlannedMessage>,
    accepted: Vec<bool>,
    latency: Option<Duration>,
    error: Option<String>,
}

async fn send_batch(
    sqs: &Sqs,
    url: &str,
    pacer: &Pacer,
    messages: Vec<PlannedMessage>,
) -> BatchResult {
    pacer.wait(messages.len()).await;
    let entries: Vec<SendMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .build()
                .expect("id and body are set")
        })
        .collect();
    let started = Instant::now();
    let sent = sqs
        .client
        .send_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await;
    let latency = started.elapsed();
    let mut accepted = vec![false; messages.len()];
    match sent {
        Ok(output) => {
            for ok in output.successful() {
                if let Some(slot) = ok
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| accepted.get_mut(i))
                {
                    *slot = true;
                }
            }
            let error = output
                .failed()
                .first()
                .map(|f| format!("{} {}", f.code(), f.message().unwrap_or_default()));
            BatchResult {
                messages,
                accepted,
                latency: Some(latency),
                error,
            }
        }
        Err(error) => BatchResult {
            messages,
            accepted,
            latency: None,
            error: Some(sqs_error(sqs, error, "sending a batch", url).to_string()),
        },
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
        return Ok(dry_run(args, shape));
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
        if let Some(latency) = result.latency {
            latencies.push(latency);
            consecutive_failed_calls = 0;
        } else {
            consecutive_failed_calls += 1;
        }
        if let Some(error) = &result.error {
            *errors.entry(error.clone()).or_default() += 1;
        }
        for (message, accepted) in result.messages.into_iter().zip(result.accepted) {
            let mut entry = message.entry;
            entry.sent = accepted;
            if accepted {
                sent += 1;
                *sent_by_kind.entry(entry.kind.name()).or_default() += 1;
            } else {
                failed += 1;
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
            gave_up = result.error.clone();
            break;
        }
    }
    drop(results);
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let manifest_path = writer.finish()?;

    let calls = latencies.len();
    let percentiles = Percentiles::of(&mut latencies);
    let rate = sent as f64 / elapsed.as_secs_f64().max(0.001);
    let interrupted = interrupt.is_set();
    let mut human = format!(
        "load test {load_test_id} (seed {seed}) to {}\nsent {sent} messages, {failed} failed sends, in {:.1}s: {rate:.0} msg/s ({calls} SendMessageBatch calls, concurrency {})\n",
        args.queue_url,
        elapsed.as_secs_f64(),
        args.concurrency,
    );
    let mut kinds = Table::new(&["kind", "sent"]);
    for kind in [Kind::Valid, Kind::Malformed, Kind::TooOld] {
        kinds.row(vec![
            kind.name().to_owned(),
            sent_by_kind
                .get(kind.name())
                .copied()
                .unwrap_or(0)
                .to_string(),
        ]);
    }
    human.push_str(&kinds.render());
    human.push_str(&format!(
        "\nSendMessageBatch latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\nmanifest: {}\n",
        percentiles.p50_ms,
        percentiles.p90_ms,
        percentiles.p99_ms,
        percentiles.max_ms,
        manifest_path.display()
    ));
    for (error, count) in errors.iter().take(5) {
        human.push_str(&format!("error ({count}x): {error}\n"));
    }
    if let Some(error) = &gave_up {
        human.push_str(&format!(
            "stopped early: {consecutive_failed_calls} calls in a row failed; last error: {error}\n"
        ));
    }
    if interrupted {
        human.push_str("interrupted: the manifest lists what was sent before the stop\n");
    }
    human.push_str(&format!(
        "next: let the consumer drain the queue, then `sfn-mackerel verify --manifest {}`",
        manifest_path.display()
    ));
    let exit_code = if gave_up.is_some() && sent == 0 {
        exit::UNAVAILABLE
    } else if failed > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    };
    Ok(Outcome::new(
        json!({
            "command": "flood",
            "load_test_id": load_test_id,
            "seed": seed,
            "queue_url": args.queue_url,
            "manifest": manifest_path,
            "requested": args.count,
            "sent": sent,
            "failed_sends": failed,
            "sent_by_kind": sent_by_kind,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "achieved_rate": rate,
            "target_rate": (args.rate > 0.0).then_some(args.rate),
            "concurrency": args.concurrency,
            "batch_calls": calls,
            "latency_ms": percentiles,
            "errors": errors,
            "stopped_early": gave_up,
            "interrupted": interrupted,
        }),
        human,
    )
    .with_exit_code(exit_code))
}

fn dry_run(args: &FloodArgs, shape: LoadShape) -> Outcome {
    let preview = args.count.unwrap_or(1_000).min(10_000);
    let services = shape.services.clone();
    let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut samples: BTreeMap<&'static str, String> = BTreeMap::new();
    for planned in Generator::new(shape).take(preview as usize) {
        let kind = planned.entry.kind.name();
        *by_kind.entry(kind).or_default() += 1;
        samples.entry(kind).or_insert(planned.body);
    }
    let mut human = format!("dry run: nothing sent. The first {preview} messages would be:\n");
    let mut table = Table::new(&["kind", "messages", "sample body"]);
    for (kind, count) in &by_kind {
        table.row(vec![
            (*kind).to_owned(),
            count.to_string(),
            output::shorten(samples.get(kind).map(String::as_str).unwrap_or(""), 120),
        ]);
    }
    human.push_str(&table.render());
    human.push_str(&format!("\nservices: {}", services.join(", ")));
    Outcome::new(
        json!({
            "command": "flood",
            "dry_run": true,
            "previewed": preview,
            "by_kind": by_kind,
            "samples": samples,
            "services": services,
        }),
        human,
    )
}
