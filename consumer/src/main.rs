//! The consumer binary: the Lambda function (the `bootstrap` Terraform deploys)
//! or, with `poll`, a long-running queue runner for local use and containers.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sfn_mackerel_consumer::runner::{run_queue, RunnerError, RunnerOptions};
use sfn_mackerel_consumer::startup::{consumer_from_env, report_init_error, StartupError};

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

/// How a run ended, with the exit code each end has (README: "Exit codes").
enum Ending {
    Stopped,
    /// A setting, the secret or the HTTP client prevented the start.
    CouldNotStart(StartupError),
    /// No command, and not under Lambda.
    NotUnderLambda,
    /// The queue runner could not start (a queue setting) or a worker failed.
    Runner(RunnerError),
    /// The Lambda runtime loop ended with an error after the start.
    Runtime(Error),
}

impl Ending {
    fn exit_code(&self) -> u8 {
        match self {
            Ending::Stopped => 0,
            Ending::CouldNotStart(_) => 1,
            // 2 is clap's, for a command line it cannot parse.
            Ending::NotUnderLambda => 3,
            Ending::Runner(RunnerError::WorkerFailed { .. }) => 4,
            Ending::Runner(_) => 1,
            Ending::Runtime(_) => 5,
        }
    }

    /// The sentence an operator reads, with its causes, never a `Debug` dump.
    fn sentence(&self) -> Option<String> {
        use sfn_mackerel_sqs::error_text::cause_line;
        match self {
            Ending::Stopped => None,
            Ending::CouldNotStart(error) => Some(cause_line(error)),
            Ending::NotUnderLambda => Some("not running under Lambda (AWS_LAMBDA_RUNTIME_API is unset): to drain a queue locally run `sfn-mackerel-consumer poll --queue-url URL`".to_owned()),
            Ending::Runner(error) => Some(cause_line(error)),
            Ending::Runtime(error) => Some(format!("the Lambda runtime stopped: {}", cause_line(error.as_ref()))),
        }
    }
}

// The arguments are parsed before the runtime starts its worker threads, so
// `--help` and `--version` answer even where threads cannot start (qemu's user
// emulation on the CI machines, scripts/build-arm64.sh).
fn main() -> ExitCode {
    let cli = Cli::parse();
    let ending = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(async {
            lambda_runtime::tracing::init_default_subscriber();
            run(cli).await
        }),
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    if let Some(sentence) = ending.sentence() {
        eprintln!("error: {sentence}");
    }
    ExitCode::from(ending.exit_code())
}

async fn run(cli: Cli) -> Ending {
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

async fn run_lambda() -> Ending {
    let Some(runtime_api) = std::env::var("AWS_LAMBDA_RUNTIME_API").ok() else {
        return Ending::NotUnderLambda;
    };
    let consumer = match consumer_from_env().await {
        Ok((consumer, _sqs)) => consumer,
        Err(error) => {
            report_init_error(&runtime_api, &error).await;
            return Ending::CouldNotStart(error);
        }
    };
    let consumer = &consumer;
    let ran = lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        sfn_mackerel_consumer::lambda::handle_sqs_event(consumer, event)
            .await
            .map_err(Error::from)
    }))
    .await;
    match ran {
        Ok(()) => Ending::Stopped,
        Err(error) => Ending::Runtime(error),
    }
}

async fn run_poller(options: RunnerOptions) -> Ending {
    let (consumer, sqs) = match consumer_from_env().await {
        Ok(built) => built,
        Err(error) => return Ending::CouldNotStart(error),
    };
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("stop requested; finishing the batch in hand");
        let _ = stop_sender.send(true);
    });
    match run_queue(Arc::new(consumer), sqs, options, stop).await {
        Ok(_) => Ending::Stopped,
        Err(error) => Ending::Runner(error),
    }
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
