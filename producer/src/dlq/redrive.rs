//! `dlq redrive`: moving parked messages back to the source queue. The native
//! SQS move task is used where the endpoint has it and no filter is asked for;
//! otherwise (filters, or an endpoint such as moto without it) messages are
//! received, sent to the source queue, and deleted from the DLQ only after the
//! source queue accepted them: an interruption can duplicate a message, never lose it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use serde::Serialize;
use sfn_mackerel_message::dead_letter::DeadLetterReason;
use tokio::time::Instant;

use crate::aws::{is_not_supported, sqs_error, Sqs};
use crate::cli::{RedriveArgs, RedriveMethod};
use crate::clock::now_seconds;
use crate::dlq::parked::{group_by_reason, Parked, ReasonGroup};
use crate::dlq::{scan, Scan};
use crate::error::{exit, CliError};
use crate::interrupt::Interrupt;
use crate::output::{self, Outcome, Report, Table};
use crate::pacing::Pacer;
use crate::queue::{self, dead_letter_sources, hand_back, queue_info, queue_name, QueueInfo};

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
    pub moved_by_reason: BTreeMap<DeadLetterReason, u64>,
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
    let report = ManualReport {
        command: "dlq redrive",
        method: "manual",
        why,
        destination: destination.url,
        stopped: figures.stopped.unwrap_or(Stop::Empty),
        figures,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        dlq_remaining: remaining,
        dlq_url: args.dlq_url.clone(),
        destination_named: destination.explicit,
        timeout_seconds: args.timeout,
        max: args.max,
    };
    if let Some(warning) = report.warning() {
        output::warn(&warning);
    }
    Ok(Outcome::of(&report))
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
/// `--timeout` capped at 300 s) and hands every message back at once.
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
    let mut report = NativeReport {
        command: "dlq redrive",
        method: "native",
        task_handle: task,
        status: "RUNNING".to_owned(),
        moved: None,
        failure_reason: None,
        destination: destination_arn,
        source_arn: dlq.arn.clone(),
        waited: !args.no_wait,
    };
    if args.no_wait {
        return Ok(Outcome::of(&report));
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
    report.status = status;
    report.moved = Some(moved);
    report.failure_reason = failure;
    Ok(Outcome::of(&report))
}

/// What a native move task did, as far as it was followed.
#[derive(Debug, Clone, Serialize)]
pub struct NativeReport {
    pub command: &'static str,
    pub method: &'static str,
    pub task_handle: String,
    /// As `ListMessageMoveTasks` last said: RUNNING, COMPLETED, CANCELLED, FAILED...
    pub status: String,
    /// About how many moved; `None` when the task was only started (`--no-wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub destination: String,
    #[serde(skip)]
    pub source_arn: String,
    #[serde(skip)]
    pub waited: bool,
}

impl fmt::Display for NativeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let follow = format!(
            "follow it with `aws sqs list-message-move-tasks --source-arn {}`",
            self.source_arn
        );
        if !self.waited {
            return write!(
                f,
                "started native move task {} from {} to {}; {follow}",
                self.task_handle, self.source_arn, self.destination
            );
        }
        writeln!(
            f,
            "native move task {}: {}, about {} messages moved from {} to {}",
            self.task_handle,
            self.status,
            self.moved.unwrap_or(0),
            self.source_arn,
            self.destination
        )?;
        match self.status.as_str() {
            "COMPLETED" => Ok(()),
            "RUNNING" | "CANCELLING" => writeln!(
                f,
                "the task is still running in SQS (stopped waiting); {follow}, stop it with `aws sqs cancel-message-move-task --task-handle <handle>`"
            ),
            _ => match &self.failure_reason {
                Some(reason) => writeln!(f, "failure: {reason}"),
                None => Ok(()),
            },
        }
    }
}

impl Report for NativeReport {
    fn exit_code(&self) -> u8 {
        if !self.waited || self.status == "COMPLETED" {
            exit::OK
        } else {
            exit::PARTIAL
        }
    }
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

/// What a redrive by receive/send/delete did.
#[derive(Debug, Clone, Serialize)]
pub struct ManualReport {
    pub command: &'static str,
    pub method: &'static str,
    /// Why this path ran instead of a native move task.
    pub why: String,
    pub destination: String,
    pub figures: ManualFigures,
    pub stopped: Stop,
    pub elapsed_seconds: f64,
    pub dlq_remaining: Option<queue::Depth>,
    #[serde(skip)]
    pub dlq_url: String,
    /// Whether the operator named the destination (else the redrive policy did).
    #[serde(skip)]
    pub destination_named: bool,
    #[serde(skip)]
    pub timeout_seconds: u64,
    #[serde(skip)]
    pub max: Option<u64>,
}

impl ManualReport {
    /// Moved messages whose reason a redrive cannot fix: the consumer parks them again.
    pub fn hopeless(&self) -> u64 {
        self.figures
            .moved_by_reason
            .iter()
            .filter(|(reason, _)| !reason.is_redrivable())
            .map(|(_, count)| count)
            .sum()
    }

    pub fn warning(&self) -> Option<String> {
        let hopeless = self.hopeless();
        (hopeless > 0).then(|| {
            format!(
                "{hopeless} moved messages have a reason a redrive cannot fix (the message itself is wrong); the consumer will park them again"
            )
        })
    }
}

impl fmt::Display for ManualReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures = &self.figures;
        write!(
            f,
            "redrive by receive/send/delete ({})\nmoved {} messages from {} to {} in {:.1}s",
            self.why,
            figures.moved,
            queue_name(&self.dlq_url),
            queue_name(&self.destination),
            self.elapsed_seconds
        )?;
        if !self.destination_named {
            write!(f, " (the queue whose redrive policy names this DLQ)")?;
        }
        writeln!(f)?;
        if !figures.moved_by_reason.is_empty() {
            let mut table = Table::new(&["reason", "moved"]);
            for (reason, count) in &figures.moved_by_reason {
                table.row(vec![reason.to_string(), count.to_string()]);
            }
            writeln!(f, "{}", table.render())?;
        }
        if let Some(warning) = self.warning() {
            writeln!(f, "warning: {warning}")?;
        }
        if figures.skipped > 0 {
            writeln!(
                f,
                "{} messages did not match --reason and stay in the DLQ",
                figures.skipped
            )?;
        }
        if figures.failed_sends > 0 {
            writeln!(
                f,
                "{} messages were refused by {} and stay in the DLQ (last reason: {})",
                figures.failed_sends,
                queue_name(&self.destination),
                figures.last_send_error.as_deref().unwrap_or("unknown")
            )?;
        }
        if figures.not_deleted > 0 {
            writeln!(
                f,
                "{} messages were sent but could not be deleted from the DLQ: they will be redriven again (delivered twice)",
                figures.not_deleted
            )?;
        }
        match self.stopped {
            Stop::Timeout => writeln!(
                f,
                "stopped after --timeout {}s; run again to continue",
                self.timeout_seconds
            )?,
            Stop::Interrupted => writeln!(
                f,
                "interrupted after the batch in hand; run again to continue"
            )?,
            Stop::Max => writeln!(f, "stopped at --max {}", self.max.unwrap_or_default())?,
            Stop::Empty => {}
        }
        if let Some(depth) = &self.dlq_remaining {
            write!(f, "the DLQ now holds about {} messages", depth.total())?;
        }
        Ok(())
    }
}

impl Report for ManualReport {
    fn exit_code(&self) -> u8 {
        if self.figures.failed_sends > 0
            || self.figures.not_deleted > 0
            || matches!(self.stopped, Stop::Timeout | Stop::Interrupted)
        {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
}

/// What a redrive would move.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    pub command: &'static str,
    pub dry_run: bool,
    pub would_move: usize,
    pub destination: String,
    pub complete: bool,
    pub incomplete_because: Option<String>,
    pub reasons: Vec<ReasonGroup>,
    #[serde(skip)]
    pub dlq_url: String,
}

impl DryRunReport {
    /// What of a read-through DLQ matches the filters. Pure: `now` is epoch seconds.
    pub fn of(args: &RedriveArgs, destination: String, scanned: Scan, now: i64) -> Self {
        let mut matching: Vec<Parked> = scanned
            .messages
            .into_iter()
            .filter(|m| args.reason.is_empty() || args.reason.contains(&m.reason))
            .collect();
        if let Some(max) = args.max {
            matching.truncate(max as usize);
        }
        Self {
            command: "dlq redrive",
            dry_run: true,
            would_move: matching.len(),
            destination,
            complete: scanned.complete,
            incomplete_because: scanned.incomplete_because,
            reasons: group_by_reason(&matching, now, 1),
            dlq_url: args.dlq_url.clone(),
        }
    }
}

impl fmt::Display for DryRunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dry run: nothing moved. {} messages would move from {} to {}",
            self.would_move,
            queue_name(&self.dlq_url),
            self.destination
        )?;
        let mut table = Table::new(&["reason", "messages", "values >24h", "redrive can fix it"]);
        for group in &self.reasons {
            table.row(vec![
                group.reason.to_string(),
                group.count.to_string(),
                group.too_old_for_mackerel.to_string(),
                if group.redrivable { "yes" } else { "no" }.to_owned(),
            ]);
        }
        if !table.is_empty() {
            write!(f, "{}", table.render())?;
        }
        Ok(())
    }
}

impl Report for DryRunReport {}

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
    Ok(Outcome::of(&DryRunReport::of(
        args,
        destination,
        scanned,
        now_seconds(),
    )))
}
