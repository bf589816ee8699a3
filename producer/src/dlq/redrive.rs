//! `dlq redrive`: moving parked messages back to the source queue. The native
//! SQS move task is used where the endpoint has it and no filter is asked for;
//! otherwise (filters, or an endpoint such as moto without it) messages are
//! received, sent to the source queue, and deleted from the DLQ only after the
//! source queue accepted them: an interruption can duplicate a message, never lose it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use serde_json::json;
use tokio::time::Instant;

use crate::aws::{is_not_supported, sqs_error, Sqs};
use crate::cli::{RedriveArgs, RedriveMethod};
use crate::dlq::parked::{check_reasons, group_by_reason, redrivable, Parked};
use crate::dlq::{scan, Scan};
use crate::error::{exit, CliError};
use crate::interrupt::Interrupt;
use crate::output::{self, Outcome, Table};
use crate::pacing::Pacer;
use crate::queue::{self, dead_letter_sources, hand_back, queue_info, queue_name, QueueInfo};
use crate::send::now_seconds;

use sfn_mackerel_sqs::batch::{send_messages, CallLimits, Outgoing, MAX_ENTRIES};

/// The native task's documented maximum rate.
const NATIVE_MAX_RATE: f64 = 500.0;
/// Messages read at most when the whole DLQ is read (a dry run, the check
/// before a native move that none would be restamped).
const READ_THROUGH_LIMIT: usize = 100_000;
/// How often the native task's status is read.
const NATIVE_POLL: Duration = Duration::from_secs(2);

/// Why a manual redrive stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The DLQ has no more matching messages.
    Empty,
    /// `--max` messages were moved.
    Max,
    Timeout,
    Interrupted,
}

/// Figures of a manual redrive.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ManualFigures {
    pub moved: u64,
    pub moved_by_reason: BTreeMap<String, u64>,
    /// Received but not matching the filter (handed back, still in the DLQ).
    pub skipped: u64,
    /// The source queue refused them; they stay in the DLQ.
    pub failed_sends: u64,
    /// Sent but not deleted from the DLQ: they will be delivered twice.
    pub not_deleted: u64,
    /// Why the source queue last refused a message, if it did.
    pub last_send_error: Option<String>,
    pub stopped: Option<Stop>,
}

/// The queue messages go back to.
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: String,
    pub arn: String,
    /// Whether the operator named it (else it was found through the redrive policy).
    pub explicit: bool,
}

/// Finds the source queue: `--to-queue-url`, or the one queue whose redrive
/// policy names this DLQ.
pub async fn destination(sqs: &Sqs, args: &RedriveArgs) -> Result<Destination, CliError> {
    let (url, explicit) = match &args.to_queue_url {
        Some(url) => (url.clone(), true),
        None => {
            let sources = dead_letter_sources(sqs, &args.dlq_url).await?;
            match sources.as_slice() {
                [one] => (one.clone(), false),
                [] => {
                    return Err(CliError::usage(format!(
                        "no queue names {} as its dead-letter queue; pass the source queue with --to-queue-url",
                        queue_name(&args.dlq_url)
                    )))
                }
                many => {
                    return Err(CliError::usage(format!(
                        "several queues use this DLQ ({}); choose one with --to-queue-url",
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let info = queue_info(sqs, &url).await?;
    Ok(Destination {
        url,
        arn: info.arn,
        explicit,
    })
}

/// Runs `dlq redrive`.
pub async fn run(
    sqs: &Sqs,
    args: &RedriveArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, CliError> {
    check_reasons(&args.reason).map_err(CliError::Usage)?;
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(CliError::usage(
                "--rate must be a positive number of messages per second",
            ));
        }
    }
    if !(1..=43_200).contains(&args.visibility_timeout) {
        return Err(CliError::usage(
            "--visibility-timeout must be from 1 to 43200 seconds",
        ));
    }
    let filtered = !args.reason.is_empty() || args.max.is_some();
    if args.method == RedriveMethod::Native && filtered {
        return Err(CliError::usage(
            "a native move task moves every message: --reason and --max need --method manual (or auto)",
        ));
    }
    let dlq = queue_info(sqs, &args.dlq_url).await?;
    if args.dry_run {
        return dry_run(sqs, args, &dlq, show_progress, interrupt).await;
    }

    // Which path runs, and why, is said in the report: operators need to know
    // whether SQS or this tool moved the messages.
    let why = match (args.method, filtered) {
        (RedriveMethod::Manual, _) => "--method manual".to_owned(),
        (_, true) => "--reason / --max filter messages, which a native move task cannot".to_owned(),
        (_, false) => match native_restamps(sqs, args, show_progress, interrupt).await? {
            Some(why) if args.method == RedriveMethod::Native => {
                return Err(CliError::usage(format!(
                    "a native move task would restamp messages: {why}. Run it with --method manual (or auto), which keeps their first send time"
                )))
            }
            Some(why) => why,
            None => {
            // The destination is always named: messages the consumer parked went to
            // the DLQ directly, so SQS knows no source queue to return them to.
            let destination = destination(sqs, args).await?;
            match native(sqs, args, &dlq, destination.arn.clone(), show_progress, interrupt).await {
                Ok(outcome) => return Ok(outcome),
                Err(NativeError::Failed(error)) => return Err(error),
                Err(NativeError::Unsupported(detail)) if args.method == RedriveMethod::Auto => {
                    format!(
                        "the endpoint does not support StartMessageMoveTask ({detail}); fell back to receive/send/delete"
                    )
                }
                Err(NativeError::Unsupported(detail)) => {
                    return Err(CliError::Unreachable(format!(
                        "the endpoint does not support StartMessageMoveTask ({detail}); run again with --method manual"
                    )))
                }
            }
            }
        },
    };
    output::note(&format!("redrive method: manual ({why})"));
    let destination = destination(sqs, args).await?;
    let started = Instant::now();
    let bar = output::progress_bar(
        Some(args.max.unwrap_or(dlq.depth.visible).max(1)),
        show_progress,
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} moved  {msg}",
    );
    let figures = manual(sqs, args, &destination, interrupt, |f| {
        bar.set_position(f.moved);
        bar.set_message(format!("{} skipped", f.skipped));
    })
    .await?;
    bar.finish_and_clear();
    let remaining = queue_info(sqs, &args.dlq_url).await.ok().map(|i| i.depth);
    Ok(manual_outcome(
        args,
        &destination,
        &why,
        &figures,
        started.elapsed(),
        remaining,
    ))
}

/// Why a native move task must not move this DLQ, if it must not: it gives
/// every message a new SentTimestamp, so a message whose values take their time
/// from when it was sent, and that carries no `SourceSentTimestamp`, would be
/// posted at the time of the redrive. Reads the whole DLQ (handing it back) to
/// know; a DLQ that cannot be read through is not assumed safe.
async fn native_restamps(
    sqs: &Sqs,
    args: &RedriveArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Option<String>, CliError> {
    let scanned = read_through(sqs, args, None, show_progress, interrupt).await?;
    if let Some(why) = &scanned.incomplete_because {
        return Ok(Some(format!(
            "the DLQ could not be read through to check the messages' send times ({why}), which a native move task would reset; moved by receive/send/delete instead, which keeps them"
        )));
    }
    let restamped = scanned
        .messages
        .iter()
        .filter(|m| m.needs_its_first_send_time())
        .count();
    Ok((restamped > 0).then(|| {
        format!(
            "{restamped} messages have values without a time of their own and no SourceSentTimestamp; a native move task would stamp them with the time of the redrive, so they were moved by receive/send/delete, which keeps their first send time"
        )
    }))
}

/// Reads the whole DLQ (at most [`READ_THROUGH_LIMIT`] messages, within
/// `--timeout`) and hands every message back at once.
async fn read_through(
    sqs: &Sqs,
    args: &RedriveArgs,
    expected: Option<u64>,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Scan, CliError> {
    let bar = output::progress_bar(expected, show_progress, "{spinner} reading the DLQ {pos}");
    let scanned = scan(
        sqs,
        &args.dlq_url,
        READ_THROUGH_LIMIT,
        args.visibility_timeout,
        Duration::from_secs(args.timeout.min(300)),
        interrupt,
        |n| bar.set_position(n as u64),
    )
    .await;
    bar.finish_and_clear();
    let scanned = scanned?;
    hand_back(sqs, &args.dlq_url, &scanned.receipt_handles).await;
    Ok(scanned)
}

/// Why the native path did not run.
enum NativeError {
    /// The endpoint has no move task (moto) or refuses it for this queue.
    Unsupported(String),
    Failed(CliError),
}

async fn native(
    sqs: &Sqs,
    args: &RedriveArgs,
    dlq: &QueueInfo,
    destination_arn: String,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, NativeError> {
    let rate = match args.rate {
        Some(rate) if rate > NATIVE_MAX_RATE => {
            return Err(NativeError::Failed(CliError::usage(format!(
                "--rate {rate} is above the native move task's maximum of {NATIVE_MAX_RATE} messages per second"
            ))))
        }
        Some(rate) => Some(rate.round().max(1.0) as i32),
        None => None,
    };
    let started = sqs
        .client
        .start_message_move_task()
        .source_arn(&dlq.arn)
        .destination_arn(&destination_arn)
        .set_max_number_of_messages_per_second(rate)
        .customize()
        // An endpoint without the operation answers 500: asking again will not help.
        .config_override(
            aws_sdk_sqs::config::Builder::default().retry_config(RetryConfig::disabled()),
        )
        .send()
        .await;
    let task = match started {
        Ok(output) => output.task_handle().unwrap_or_default().to_owned(),
        Err(error) if is_not_supported(&error) => {
            let detail = error
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string());
            return Err(NativeError::Unsupported(detail));
        }
        Err(error) => {
            return Err(NativeError::Failed(sqs_error(
                sqs,
                error,
                "starting a message move task",
                &args.dlq_url,
            )))
        }
    };
    output::note(&format!(
        "redrive method: native (StartMessageMoveTask, task {task})"
    ));
    let destination = destination_arn;
    if args.no_wait {
        return Ok(Outcome::new(
            json!({"command": "dlq redrive", "method": "native", "task_handle": task, "status": "RUNNING", "destination": destination}),
            format!("started native move task {task} from {} to {destination}; follow it with `aws sqs list-message-move-tasks --source-arn {}`", dlq.arn, dlq.arn),
        ));
    }
    let bar = output::progress_bar(
        Some(dlq.depth.visible.max(1)),
        show_progress,
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} moved  {msg}",
    );
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut last = (String::from("RUNNING"), 0i64, None::<String>);
    loop {
        tokio::time::sleep(NATIVE_POLL).await;
        let listed = sqs
            .client
            .list_message_move_tasks()
            .source_arn(&dlq.arn)
            .max_results(1)
            .send()
            .await
            .map_err(|e| {
                NativeError::Failed(sqs_error(
                    sqs,
                    e,
                    "reading the move task's status",
                    &args.dlq_url,
                ))
            })?;
        if let Some(entry) = listed.results().first() {
            last = (
                entry.status().unwrap_or("UNKNOWN").to_owned(),
                entry.approximate_number_of_messages_moved(),
                entry.failure_reason().map(str::to_owned),
            );
            if let Some(total) = entry.approximate_number_of_messages_to_move() {
                bar.set_length(total.max(1) as u64);
            }
            bar.set_position(last.1.max(0) as u64);
            bar.set_message(last.0.clone());
        }
        if !matches!(last.0.as_str(), "RUNNING" | "CANCELLING") {
            break;
        }
        if Instant::now() >= deadline || interrupt.is_set() {
            break;
        }
    }
    bar.finish_and_clear();
    let (status, moved, failure) = last;
    let mut human = format!(
        "native move task {task}: {status}, about {moved} messages moved from {} to {destination}\n",
        queue_name(&args.dlq_url)
    );
    let exit_code = match status.as_str() {
        "COMPLETED" => exit::OK,
        "RUNNING" | "CANCELLING" => {
            human.push_str(&format!(
                "the task is still running in SQS (stopped waiting); follow it with `aws sqs list-message-move-tasks --source-arn {}`, stop it with `aws sqs cancel-message-move-task --task-handle <handle>`\n",
                dlq.arn
            ));
            exit::PARTIAL
        }
        _ => {
            if let Some(reason) = &failure {
                human.push_str(&format!("failure: {reason}\n"));
            }
            exit::PARTIAL
        }
    };
    Ok(Outcome::new(
        json!({
            "command": "dlq redrive",
            "method": "native",
            "task_handle": task,
            "status": status,
            "moved": moved,
            "failure_reason": failure,
            "destination": destination,
        }),
        human,
    )
    .with_exit_code(exit_code))
}

/// Receive, send, delete: the path with filters, and the fallback.
pub async fn manual(
    sqs: &Sqs,
    args: &RedriveArgs,
    destination: &Destination,
    interrupt: &Interrupt,
    on_progress: impl Fn(&ManualFigures),
) -> Result<ManualFigures, CliError> {
    let pacer = Pacer::new(args.rate);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut figures = ManualFigures::default();
    // Messages that do not match stay hidden until the end, so they are not received again and again.
    let mut held: Vec<String> = Vec::new();
    let mut held_ids: HashMap<String, ()> = HashMap::new();
    let mut empty_polls = 0;
    let result: Result<(), CliError> = async {
        loop {
            if args.max.is_some_and(|max| figures.moved >= max) {
                figures.stopped = Some(Stop::Max);
                return Ok(());
            }
            if interrupt.is_set() {
                figures.stopped = Some(Stop::Interrupted);
                return Ok(());
            }
            if Instant::now() >= deadline {
                figures.stopped = Some(Stop::Timeout);
                return Ok(());
            }
            let received = queue::receive(sqs, &args.dlq_url, args.visibility_timeout, 1).await?;
            let mut to_move: Vec<Parked> = Vec::new();
            let mut new_messages = 0;
            for message in &received {
                let parked = Parked::from_sqs(message);
                let room = args.max.map_or(u64::MAX, |max| max - figures.moved) as usize;
                let matches = args.reason.is_empty() || args.reason.contains(&parked.reason);
                if held_ids.contains_key(&parked.message_id) {
                    // Its visibility ran out while we held it: hold it again.
                    held.push(parked.receipt_handle);
                } else if matches && to_move.len() < room {
                    new_messages += 1;
                    to_move.push(parked);
                } else {
                    new_messages += 1;
                    if !matches {
                        figures.skipped += 1;
                    }
                    held_ids.insert(parked.message_id.clone(), ());
                    held.push(parked.receipt_handle);
                }
            }
            if new_messages == 0 {
                empty_polls += 1;
                if empty_polls >= 2 {
                    figures.stopped = Some(Stop::Empty);
                    return Ok(());
                }
                continue;
            }
            empty_polls = 0;
            for group in to_move.chunks(MAX_ENTRIES) {
                pacer.wait(group.len()).await;
                let copies: Vec<Outgoing> = group.iter().map(Parked::redrive_copy).collect();
                let results = send_messages(
                    &sqs.client,
                    &destination.url,
                    &copies,
                    CallLimits::SEQUENTIAL,
                )
                .await;
                let mut sent: Vec<&Parked> = Vec::new();
                let mut refused: Vec<String> = Vec::new();
                for (message, result) in group.iter().zip(results) {
                    match result {
                        Ok(()) => sent.push(message),
                        Err(why) => {
                            figures.last_send_error = Some(why);
                            refused.push(message.receipt_handle.clone());
                        }
                    }
                }
                figures.failed_sends += refused.len() as u64;
                if !refused.is_empty() {
                    // Refused by the source queue: leave them in the DLQ, visible again at once.
                    hand_back(sqs, &args.dlq_url, &refused).await;
                }
                let handles: Vec<String> = sent.iter().map(|m| m.receipt_handle.clone()).collect();
                let not_deleted = queue::delete(sqs, &args.dlq_url, &handles).await;
                figures.not_deleted += not_deleted.len() as u64;
                for message in &sent {
                    figures.moved += 1;
                    *figures
                        .moved_by_reason
                        .entry(message.reason.clone())
                        .or_default() += 1;
                }
                on_progress(&figures);
            }
        }
    }
    .await;
    hand_back(sqs, &args.dlq_url, &held).await;
    result.map(|()| figures)
}

fn manual_outcome(
    args: &RedriveArgs,
    destination: &Destination,
    why: &str,
    figures: &ManualFigures,
    elapsed: Duration,
    remaining: Option<queue::Depth>,
) -> Outcome {
    let mut human = format!(
        "redrive by receive/send/delete ({why})\nmoved {} messages from {} to {} in {:.1}s",
        figures.moved,
        queue_name(&args.dlq_url),
        queue_name(&destination.url),
        elapsed.as_secs_f64()
    );
    if !destination.explicit {
        human.push_str(" (the queue whose redrive policy names this DLQ)");
    }
    human.push('\n');
    if !figures.moved_by_reason.is_empty() {
        let mut table = Table::new(&["reason", "moved"]);
        for (reason, count) in &figures.moved_by_reason {
            table.row(vec![reason.clone(), count.to_string()]);
        }
        human.push_str(&table.render());
        human.push('\n');
    }
    let hopeless: u64 = figures
        .moved_by_reason
        .iter()
        .filter(|(reason, _)| !redrivable(reason))
        .map(|(_, count)| count)
        .sum();
    if hopeless > 0 {
        let warning = format!(
            "{hopeless} moved messages have a reason a redrive cannot fix (the message itself is wrong); the consumer will park them again"
        );
        output::warn(&warning);
        human.push_str(&format!("warning: {warning}\n"));
    }
    if figures.skipped > 0 {
        human.push_str(&format!(
            "{} messages did not match --reason and stay in the DLQ\n",
            figures.skipped
        ));
    }
    if figures.failed_sends > 0 {
        human.push_str(&format!(
            "{} messages were refused by {} and stay in the DLQ (last reason: {})\n",
            figures.failed_sends,
            queue_name(&destination.url),
            figures.last_send_error.as_deref().unwrap_or("unknown")
        ));
    }
    if figures.not_deleted > 0 {
        human.push_str(&format!(
            "{} messages were sent but could not be deleted from the DLQ: they will be redriven again (delivered twice)\n",
            figures.not_deleted
        ));
    }
    let stopped = figures.stopped.unwrap_or(Stop::Empty);
    match stopped {
        Stop::Timeout => human.push_str(&format!(
            "stopped after --timeout {}s; run again to continue\n",
            args.timeout
        )),
        Stop::Interrupted => {
            human.push_str("interrupted after the batch in hand; run again to continue\n")
        }
        Stop::Max => human.push_str(&format!(
            "stopped at --max {}\n",
            args.max.unwrap_or_default()
        )),
        Stop::Empty => {}
    }
    if let Some(depth) = remaining {
        human.push_str(&format!(
            "the DLQ now holds about {} messages",
            depth.total()
        ));
    }
    let exit_code = if figures.failed_sends > 0
        || figures.not_deleted > 0
        || matches!(stopped, Stop::Timeout | Stop::Interrupted)
    {
        exit::PARTIAL
    } else {
        exit::OK
    };
    Outcome::new(
        json!({
            "command": "dlq redrive",
            "method": "manual",
            "why": why,
            "destination": destination.url,
            "figures": figures,
            "stopped": stopped,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "dlq_remaining": remaining,
        }),
        human,
    )
    .with_exit_code(exit_code)
}

async fn dry_run(
    sqs: &Sqs,
    args: &RedriveArgs,
    dlq: &QueueInfo,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, CliError> {
    let destination = destination(sqs, args).await?.url;
    let scanned = read_through(
        sqs,
        args,
        Some(dlq.depth.visible.max(1)),
        show_progress,
        interrupt,
    )
    .await?;
    let mut matching: Vec<Parked> = scanned
        .messages
        .into_iter()
        .filter(|m| args.reason.is_empty() || args.reason.contains(&m.reason))
        .collect();
    if let Some(max) = args.max {
        matching.truncate(max as usize);
    }
    let groups = group_by_reason(&matching, now_seconds(), 1);
    let mut human = format!(
        "dry run: nothing moved. {} messages would move from {} to {destination}\n",
        matching.len(),
        queue_name(&args.dlq_url)
    );
    let mut table = Table::new(&["reason", "messages", "values >24h", "redrive can fix it"]);
    for group in &groups {
        table.row(vec![
            group.reason.clone(),
            group.count.to_string(),
            group.too_old_for_mackerel.to_string(),
            if group.redrivable { "yes" } else { "no" }.to_owned(),
        ]);
    }
    if !table.is_empty() {
        human.push_str(&table.render());
    }
    Ok(Outcome::new(
        json!({
            "command": "dlq redrive",
            "dry_run": true,
            "would_move": matching.len(),
            "destination": destination,
            "complete": scanned.complete,
            "incomplete_because": scanned.incomplete_because,
            "reasons": groups,
        }),
        human,
    ))
}
