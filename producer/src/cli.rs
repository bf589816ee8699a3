//! The command line: every command, flag, default and example an operator sees
//! in `--help`. Parsing only; the commands live in their own modules.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::EXIT_CODES_HELP;
use sfn_mackerel_message::dead_letter::DeadLetterReason;
use sfn_mackerel_message::MergeRule;

/// The operator CLI of the sfn-mackerel pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "sfn-mackerel",
    version,
    about = "Operate the sfn-mackerel pipeline: send results, load-test, verify Mackerel, inspect and redrive the DLQ",
    long_about = "Operate the sfn-mackerel pipeline (Step Functions -> SQS -> consumer -> Mackerel service metrics).\n\n\
AWS settings come from the standard AWS environment and config files (AWS_PROFILE, AWS_REGION, \
AWS_ENDPOINT_URL, SSO and credential_process profiles); --profile, --region and --endpoint-url override them.",
    after_help = top_level_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout instead of tables (progress and warnings stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// SQS endpoint, e.g. a local moto server (default: AWS_ENDPOINT_URL, else AWS's own).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile from ~/.aws/config (default: AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Log more to stderr (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send one job result, exactly as a workflow's sendMessage task would (smoke test after a deploy).
    #[command(after_help = with_exit_codes(SEND_EXAMPLES))]
    Send(SendArgs),
    /// Load test: send many messages at a target rate and write a manifest for `verify`.
    #[command(after_help = with_exit_codes(FLOOD_EXAMPLES))]
    Flood(FloodArgs),
    /// Check that what a flood sent reached Mackerel (values) and the DLQ (rejects).
    #[command(after_help = with_exit_codes(VERIFY_EXAMPLES))]
    Verify(VerifyArgs),
    /// Inspect, redrive or purge the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List DLQ messages grouped by reason, without removing them (they are handed back at the end).
    #[command(after_help = with_exit_codes(&format!("{PEEK_EXAMPLES}\n\n{}", reasons_help())))]
    Peek(PeekArgs),
    /// Move DLQ messages back to the source queue (native move task, or receive/send/delete).
    #[command(after_help = with_exit_codes(REDRIVE_EXAMPLES))]
    Redrive(RedriveArgs),
    /// Delete every message in the DLQ. Needs --confirm with the queue's name.
    #[command(after_help = with_exit_codes(PURGE_EXAMPLES))]
    Purge(PurgeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The queue the workflows send results to.
    #[arg(long, env = "SFN_MACKEREL_QUEUE_URL", value_name = "URL")]
    pub queue_url: String,
    /// Mackerel service the value belongs to.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub service: Option<String>,
    /// Metric name, e.g. glue.job.make_order.failed.
    #[arg(long, requires = "service", conflicts_with = "file")]
    pub name: Option<String>,
    /// The value (a finite number).
    #[arg(
        long,
        requires = "name",
        allow_negative_numbers = true,
        conflicts_with = "file"
    )]
    pub value: Option<f64>,
    /// When it happened: RFC 3339 or epoch seconds (default: now, written into the body so that a redrive never moves it).
    #[arg(long, conflicts_with = "file")]
    pub time: Option<String>,
    /// A file holding the message body as JSON; `-` reads stdin.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Send even if the consumer would set the message aside (for testing the DLQ path).
    #[arg(long)]
    pub allow_invalid: bool,
    /// Validate and print the body without sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print, instead of sending it, the SQS event Lambda's event source mapping
    /// would hand the consumer for this message (sent now), to try the function
    /// with `cargo lambda invoke --data-file`.
    #[arg(long)]
    pub sqs_event: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FloodArgs {
    /// The queue to load.
    #[arg(long, env = "SFN_MACKEREL_QUEUE_URL", value_name = "URL")]
    pub queue_url: String,
    /// How many messages to send.
    #[arg(
        long,
        conflicts_with = "duration",
        required_unless_present = "duration"
    )]
    pub count: Option<u64>,
    /// Send for this long instead of a count (e.g. 30s, 5m, 1h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Target messages per second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// SendMessageBatch calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Number of services, named <service-prefix>-01 ... (they must exist in Mackerel).
    #[arg(long, default_value_t = 3, conflicts_with = "service")]
    pub services: u32,
    /// Prefix of the generated service names.
    #[arg(long, default_value = "sfn-mackerel-load")]
    pub service_prefix: String,
    /// Use these services instead of generated names (repeatable).
    #[arg(long)]
    pub service: Vec<String>,
    /// Jobs per service; each reports glue.job-NN.failed and glue.job-NN.duration_seconds.
    #[arg(long, default_value_t = 5)]
    pub jobs: u32,
    /// Distinct workflow executions the messages are spread over.
    #[arg(long, default_value_t = 100)]
    pub executions: u32,
    /// Share of results with failed = 1.
    #[arg(long, default_value_t = 0.1)]
    pub failure_fraction: f64,
    /// Share of messages that are not valid results (the consumer parks them).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_fraction: f64,
    /// Share of messages with values older than 24 h (parked as too_old).
    #[arg(long, default_value_t = 0.0)]
    pub too_old_fraction: f64,
    /// Valid values are stamped within this many minutes before now.
    #[arg(long, default_value_t = 10)]
    pub spread_minutes: u32,
    /// RNG seed; the same seed gives the same messages (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the manifest (default: flood-<load-test-id>.jsonl).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// Print the shape and a few sample bodies without sending.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MackerelArgs {
    /// Mackerel API base URL (the stand-in's, locally).
    #[arg(
        long,
        env = "MACKEREL_API_BASE",
        default_value = "https://api.mackerelio.com"
    )]
    pub mackerel_api_base: String,
}

/// Where the Mackerel API key comes from: the environment only, never a flag,
/// which would land in the shell's history and in `ps` listings.
pub const MACKEREL_API_KEY_VARIABLE: &str = "MACKEREL_API_KEY";

impl MackerelArgs {
    /// The key from `MACKEREL_API_KEY`, if set and not blank.
    pub fn api_key(&self) -> Option<String> {
        std::env::var(MACKEREL_API_KEY_VARIABLE)
            .ok()
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())
    }
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The manifest `flood` wrote.
    #[arg(long, value_name = "PATH")]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub mackerel: MackerelArgs,
    /// The DLQ, to find the messages the consumer should have parked.
    #[arg(long, env = "SFN_MACKEREL_DLQ_URL", value_name = "URL")]
    pub dlq_url: Option<String>,
    /// Do not look in the DLQ (parked messages are then not checked).
    #[arg(long, conflicts_with = "dlq_url")]
    pub skip_dlq: bool,
    /// Wait until the source queue is empty before checking (needs --queue-url).
    #[arg(long, requires = "queue_url")]
    pub wait_drained: bool,
    /// The source queue, for --wait-drained.
    #[arg(long, env = "SFN_MACKEREL_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,
    /// Longest wait for the queue to drain, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// How the consumer merges values of one (service, name, minute).
    #[arg(long, default_value = "max", value_parser = merge_rule)]
    pub merge_rule: MergeRule,
    /// Count a minute overwritten by another value of the run as a mismatch.
    #[arg(long)]
    pub strict: bool,
    /// At most this many problems are listed (all are counted).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
}

#[derive(Debug, Clone, Args)]
pub struct PeekArgs {
    /// The dead-letter queue.
    #[arg(long, env = "SFN_MACKEREL_DLQ_URL", value_name = "URL")]
    pub dlq_url: String,
    /// Look at most at this many messages.
    #[arg(long, default_value_t = 100)]
    pub max: usize,
    /// Sample bodies shown per reason.
    #[arg(long, default_value_t = 2)]
    pub samples: usize,
    /// Only these reasons (repeatable), e.g. unknown_service or retries_exhausted.
    #[arg(long, value_parser = DeadLetterReason::parse_known)]
    pub reason: Vec<DeadLetterReason>,
    /// How long peeked messages stay hidden if this tool dies before handing them back (seconds).
    #[arg(long, default_value_t = 30)]
    pub visibility_timeout: i32,
}

/// How `dlq redrive` moves messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedriveMethod {
    /// Native move task when possible, else receive/send/delete.
    Auto,
    /// Only StartMessageMoveTask (moves everything, no filters).
    Native,
    /// Receive from the DLQ, send to the queue, then delete from the DLQ.
    Manual,
}

#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The dead-letter queue.
    #[arg(long, env = "SFN_MACKEREL_DLQ_URL", value_name = "URL")]
    pub dlq_url: String,
    /// Where to move messages (default: the queue whose redrive policy names this DLQ).
    #[arg(long, value_name = "URL")]
    pub to_queue_url: Option<String>,
    /// Only messages with this reason (repeatable); implies the manual method.
    #[arg(long, value_parser = DeadLetterReason::parse_known)]
    pub reason: Vec<DeadLetterReason>,
    /// Move at most this many messages; implies the manual method.
    #[arg(long)]
    pub max: Option<u64>,
    /// Messages per second (native: 1 to 500; default: as fast as SQS allows).
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, value_enum, default_value_t = RedriveMethod::Auto)]
    pub method: RedriveMethod,
    /// Show what would move, without moving anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after this many seconds (the manual method finishes the batch in hand).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// How long a message in hand stays hidden in the DLQ (seconds); it reappears if the tool dies.
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout: i32,
    /// Native method: start the task and return without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// The dead-letter queue.
    #[arg(long, env = "SFN_MACKEREL_DLQ_URL", value_name = "URL")]
    pub dlq_url: String,
    /// The queue's name, repeated, to confirm the deletion (e.g. --confirm results-dlq).
    #[arg(long, value_name = "QUEUE_NAME")]
    pub confirm: Option<String>,
    /// Show how many messages would be deleted, without deleting.
    #[arg(long)]
    pub dry_run: bool,
    /// Purge even though no queue's redrive policy names this queue as its DLQ
    /// (without it, such a queue is refused: it may be a live results queue).
    #[arg(long)]
    pub allow_non_dlq: bool,
}

/// Reads a `MERGE_RULE` name, listing the names on a typo.
fn merge_rule(text: &str) -> Result<MergeRule, String> {
    MergeRule::from_name(text).ok_or_else(|| {
        format!(
            "one of {} (the consumer's MERGE_RULE)",
            MergeRule::NAMES.join(", ")
        )
    })
}

/// Reads `30s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 30s, 5m or 1h"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use s, m or h")),
    };
    if seconds == 0 {
        return Err("the duration must be more than 0".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

fn with_exit_codes(examples: &str) -> String {
    format!("{examples}\n\n{EXIT_CODES_HELP}")
}

fn top_level_help() -> String {
    with_exit_codes(
        "Examples:
  sfn-mackerel send --queue-url $QUEUE --service ORG --name glue.job.make_order.failed --value 0
  sfn-mackerel flood --queue-url $QUEUE --count 20000 --concurrency 8 --manifest run.jsonl
  sfn-mackerel verify --manifest run.jsonl --dlq-url $DLQ --wait-drained --queue-url $QUEUE
  sfn-mackerel dlq peek --dlq-url $DLQ
  sfn-mackerel dlq redrive --dlq-url $DLQ --reason unknown_service

The DLQ runbook is in producer/README.md.",
    )
}

const SEND_EXAMPLES: &str = "Examples:
  # one value, stamped now
  sfn-mackerel send --queue-url $QUEUE --service ORG --name glue.job.make_order.failed --value 0
  # with an explicit time
  sfn-mackerel send --queue-url $QUEUE --service ORG --name glue.job.make_order.failed --value 1 --time 2026-11-29T19:43:43Z
  # a body from a file, or from stdin
  sfn-mackerel send --queue-url $QUEUE --file result.json
  echo '{\"service\":\"ORG\",\"metrics\":[{\"name\":\"a.b\",\"value\":1}]}' | sfn-mackerel send --queue-url $QUEUE --file -
  # check a body without sending it
  sfn-mackerel send --queue-url $QUEUE --file result.json --dry-run";

const FLOOD_EXAMPLES: &str = "Examples:
  # 20,000 messages, 8 batches in flight, as fast as possible
  sfn-mackerel flood --queue-url $QUEUE --count 20000 --concurrency 8 --manifest run.jsonl
  # 5 minutes at 200 msg/s with 2% malformed and 1% too-old messages
  sfn-mackerel flood --queue-url $QUEUE --duration 5m --rate 200 --malformed-fraction 0.02 --too-old-fraction 0.01
  # against real services, reproducibly
  sfn-mackerel flood --queue-url $QUEUE --count 1000 --service ORG-staging --seed 7
  # look at the load without sending it
  sfn-mackerel flood --queue-url $QUEUE --count 100 --malformed-fraction 0.5 --dry-run

The services must exist in Mackerel (values for unknown services are parked as unknown_service).";

const VERIFY_EXAMPLES: &str = "Examples:
  # after the consumer drained the queue
  MACKEREL_API_KEY=<read key> sfn-mackerel verify --manifest run.jsonl --dlq-url $DLQ
  # wait for the queue to drain first (at most 10 minutes)
  sfn-mackerel verify --manifest run.jsonl --dlq-url $DLQ --wait-drained --queue-url $QUEUE --timeout 600
  # against the local Mackerel stand-in
  MACKEREL_API_KEY=KEY sfn-mackerel verify --manifest run.jsonl --skip-dlq --mackerel-api-base http://127.0.0.1:8787

The Mackerel API key is read from MACKEREL_API_KEY only (a read-only key is
enough). There is no flag for it: a key on a command line lands in the shell's
history and in process listings.";

const PEEK_EXAMPLES: &str = "Examples:
  sfn-mackerel dlq peek --dlq-url $DLQ
  sfn-mackerel dlq peek --dlq-url $DLQ --reason unknown_service --samples 5
  sfn-mackerel dlq peek --dlq-url $DLQ --max 1000 --json | jq '.reasons'";

/// The reason codes, from the one list that defines them.
fn reasons_help() -> String {
    let codes: Vec<String> = DeadLetterReason::known()
        .map(|reason| reason.code().to_owned())
        .collect();
    format!(
        "Reasons: {} (retries_exhausted: moved by the queue's redrive policy, without a Reason attribute; event_delivery_failed: an event EventBridge could not deliver to the queue, with its ERROR_CODE).",
        codes.join(", ")
    )
}

const REDRIVE_EXAMPLES: &str = "Examples:
  # everything back to the source queue (native move task where SQS supports it)
  sfn-mackerel dlq redrive --dlq-url $DLQ
  # only what failed because the service did not exist yet, 50 msg/s
  sfn-mackerel dlq redrive --dlq-url $DLQ --reason unknown_service --rate 50
  # see what would move first
  sfn-mackerel dlq redrive --dlq-url $DLQ --reason retries_exhausted --dry-run
  # the first 100 only, always by receive/send/delete
  sfn-mackerel dlq redrive --dlq-url $DLQ --max 100 --method manual

A message is deleted from the DLQ only after the source queue accepted it: an
interruption can leave a message in both queues (delivered twice), never in neither.";

const PURGE_EXAMPLES: &str = "Examples:
  sfn-mackerel dlq purge --dlq-url $DLQ --dry-run
  sfn-mackerel dlq purge --dlq-url https://sqs.eu-west-1.amazonaws.com/123456789012/results-dlq --confirm results-dlq";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
