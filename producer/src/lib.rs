//! The operator CLI of the sfn-mackerel pipeline (`sfn-mackerel`): send a job
//! result, flood the queue for load tests, verify what reached Mackerel, and
//! inspect, redrive or purge the dead-letter queue.
//!
//! Pure logic (load shaping, manifest format, verification, DLQ grouping) is
//! kept apart from I/O (SQS, the Mackerel read API) and tested without servers.

pub mod aws;
pub mod cli;
pub mod clock;
pub mod dlq;
pub mod error;
pub mod flood;
pub mod interrupt;
pub mod load_shape;
pub mod mackerel_read;
pub mod manifest;
pub mod output;
pub mod pacing;
pub mod queue;
pub mod send;
pub mod verify;

use cli::{Cli, Command, DlqCommand};
use error::CliError;
use interrupt::Interrupt;
use output::Outcome;

/// Runs a parsed command line, prints the result (JSON or human) and returns the exit code.
pub async fn run(cli: Cli) -> u8 {
    let interrupt = Interrupt::new();
    interrupt.listen_for_ctrl_c();
    let json = cli.global.json;
    match execute(&cli, &interrupt).await {
        Ok(outcome) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome.json).unwrap_or_default()
                );
            } else {
                println!("{}", outcome.human);
            }
            outcome.exit_code
        }
        Err(error) => {
            let code = error.exit_code();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": error.to_string(), "exit_code": code})
                );
            }
            eprintln!("error: {error}");
            code
        }
    }
}

/// Runs a parsed command line and returns its outcome without printing it.
pub async fn execute(cli: &Cli, interrupt: &Interrupt) -> Result<Outcome, CliError> {
    let global = &cli.global;
    let sqs = aws::connect(&aws::AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
        profile: global.profile.clone(),
    })
    .await;
    let progress = !global.json;
    match &cli.command {
        Command::Send(args) => send::run(&sqs, args).await,
        Command::Flood(args) => flood::run(&sqs, args, progress, interrupt).await,
        Command::Verify(args) => verify::run(&sqs, args, progress, interrupt).await,
        Command::Dlq(DlqCommand::Peek(args)) => {
            dlq::peek::run(&sqs, args, progress, interrupt).await
        }
        Command::Dlq(DlqCommand::Redrive(args)) => {
            dlq::redrive::run(&sqs, args, progress, interrupt).await
        }
        Command::Dlq(DlqCommand::Purge(args)) => dlq::purge::run(&sqs, args).await,
    }
}

/// Logs to stderr: warnings by default, more with `-v`; `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        // IMDS is absent off EC2; its region lookup warnings only distract.
        0 => "warn,aws_config::imds=error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
