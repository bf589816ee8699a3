//! The consumer binary: the Lambda function (the `bootstrap` Terraform deploys)
//! or, with `poll`, a long-running queue runner for local use and containers.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sfn_mackerel_consumer::runner::{run_queue, RunnerError, RunnerOptions};
use sfn_mackerel_consumer::startup::consumer_from_env;

/// Forwards job results from SQS to Mackerel service metrics. Without a command it
/// runs as an AWS Lambda function (configured by environment; see the README).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Drain a queue outside Lambda, the way the event source mapping does.
    ///
    /// Same environment as the Lambda (MACKEREL_API_KEY or MACKEREL_API_KEY_SECRET_ID,
    /// MACKEREL_API_BASE, DLQ_URL, AWS_*). Stops cleanly on SIGINT/SIGTERM after
    /// finishing the batch in hand.
    ///
    /// Example: sfn-mackerel-consumer poll --queue-url http://127.0.0.1:5000/123456789012/results
    Poll {
        /// The source queue.
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
        /// Messages per batch (1 to 10000).
        #[arg(long, env = "BATCH_SIZE", default_value_t = 100,
              value_parser = clap::value_parser!(u16).range(1..=10000))]
        batch_size: u16,
        /// How long to keep collecting after a batch's first message.
        #[arg(long, env = "BATCHING_WINDOW_MS", default_value_t = 1000)]
        batching_window_ms: u64,
        /// Batches handled at the same time.
        #[arg(long, env = "RUNNER_CONCURRENCY", default_value_t = 2,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Override the queue's visibility timeout (seconds); each batch is answered within 80% of it.
        #[arg(long, env = "VISIBILITY_TIMEOUT_SECS")]
        visibility_timeout_secs: Option<u64>,
        /// Exit after this many seconds without a message (default: run until stopped).
        #[arg(long, env = "EXIT_WHEN_IDLE_SECS")]
        exit_when_idle_secs: Option<u64>,
    },
}

/// Exit code of a run that stopped cleanly.
const EXIT_OK: u8 = 0;
/// Exit code when the consumer could not start (the message says what to set).
const EXIT_COULD_NOT_START: u8 = 1;
/// Exit code when a queue runner's worker failed mid-run.
const EXIT_WORKER_FAILED: u8 = 4;

// The arguments are parsed before the runtime starts its worker threads, so
// `--help` and `--version` answer even where threads cannot start (qemu's user
// emulation on the CI machines, scripts/build-arm64.sh).
fn main() -> ExitCode {
    let cli = Cli::parse();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run_to_exit_code(cli)),
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            ExitCode::from(EXIT_COULD_NOT_START)
        }
    }
}

async fn run_to_exit_code(cli: Cli) -> ExitCode {
    lambda_runtime::tracing::init_default_subscriber();
    let result = run(cli).await;
    ExitCode::from(match result {
        Ok(()) => EXIT_OK,
        Err(error) => {
            eprintln!("error: {error}");
            if error
                .downcast_ref::<RunnerError>()
                .is_some_and(|e| matches!(e, RunnerError::WorkerFailed { .. }))
            {
                EXIT_WORKER_FAILED
            } else {
                EXIT_COULD_NOT_START
            }
        }
    })
}

async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        None => run_lambda().await,
        Some(Command::Poll {
            queue_url,
            batch_size,
            batching_window_ms,
            concurrency,
            visibility_timeout_secs,
            exit_when_idle_secs,
        }) => {
            let options = RunnerOptions {
                queue_url,
                batch_size: batch_size.into(),
                batching_window: Duration::from_millis(batching_window_ms),
                concurrency: concurrency.into(),
                visibility_timeout: visibility_timeout_secs.map(Duration::from_secs),
                exit_when_idle: exit_when_idle_secs.map(Duration::from_secs),
            };
            run_poller(options).await
        }
    }
}

async fn run_lambda() -> Result<(), Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Err("not running under Lambda (AWS_LAMBDA_RUNTIME_API is unset): to drain a queue locally run `sfn-mackerel-consumer poll --queue-url URL`".into());
    }
    let (consumer, _sqs) = consumer_from_env().await?;
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        sfn_mackerel_consumer::lambda::handle_sqs_event(consumer, event)
            .await
            .map_err(Error::from)
    }))
    .await
}

async fn run_poller(options: RunnerOptions) -> Result<(), Error> {
    let (consumer, sqs) = consumer_from_env().await?;
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("stop requested; finishing the batch in hand");
        let _ = stop_sender.send(true);
    });
    run_queue(Arc::new(consumer), sqs, options, stop).await?;
    Ok(())
}

async fn wait_for_stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
