//! Runs the Mackerel stand-in from command-line flags until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use mackerel_standin::{Config, FaultConfig, StandIn};
use tracing_subscriber::EnvFilter;

/// A local stand-in for the Mackerel service-metric API (tests and demos).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Read-write API key (repeatable).
    #[arg(long = "api-key", required = true)]
    api_keys: Vec<String>,
    /// Read-only API key (repeatable): may read, posting is answered 403.
    #[arg(long = "read-only-api-key")]
    read_only_api_keys: Vec<String>,
    /// Service that exists from the start (repeatable).
    #[arg(long = "service")]
    services: Vec<String>,
    /// JSON file to load at start and save after changes and at shutdown.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Seed of the fault randomness (random when absent; logged at start).
    #[arg(long)]
    fault_seed: Option<u64>,
    /// Share of tsdb posts answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_500_fraction: f64,
    /// Share of tsdb posts answered 503.
    #[arg(long, default_value_t = 0.0)]
    error_503_fraction: f64,
    /// Share of tsdb posts answered 429.
    #[arg(long, default_value_t = 0.0)]
    too_many_requests_fraction: f64,
    /// Share of injected 429s carrying Retry-After.
    #[arg(long, default_value_t = 0.0)]
    retry_after_fraction: f64,
    /// Retry-After value in seconds.
    #[arg(long, default_value_t = 1)]
    retry_after_seconds: u64,
    /// Latency added to every faulted request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of tsdb posts held without an answer.
    #[arg(long, default_value_t = 0.0)]
    hang_fraction: f64,
    /// How long a held request is kept before it is answered 504.
    #[arg(long, default_value_t = 120)]
    hang_max_seconds: u64,
    /// Share of tsdb posts answered 302 to --redirect-location (nothing stored).
    #[arg(long, default_value_t = 0.0)]
    redirect_fraction: f64,
    /// Where injected redirects point.
    #[arg(long, default_value = mackerel_standin::faults::DEFAULT_REDIRECT_LOCATION)]
    redirect_location: String,
    /// Share of tsdb posts answered 200 with an HTML page instead of Mackerel's answer (nothing stored).
    #[arg(long, default_value_t = 0.0)]
    not_mackerel_answer_fraction: f64,
    /// Share of tsdb posts stored and then cut off before the answer.
    #[arg(long, default_value_t = 0.0)]
    drop_after_store_fraction: f64,
    /// Requests per minute per API key; beyond it, 429.
    #[arg(long)]
    requests_per_minute_per_key: Option<u32>,
    /// Bodies larger than this many bytes are answered 413.
    #[arg(long, default_value_t = mackerel_standin::faults::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Apply faults to the read API, service creation and monitors too.
    #[arg(long)]
    fault_read_api: bool,
}

impl Args {
    fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            api_keys: self.api_keys,
            read_only_api_keys: self.read_only_api_keys,
            services: self.services,
            faults: FaultConfig {
                error_500_fraction: self.error_500_fraction,
                error_503_fraction: self.error_503_fraction,
                too_many_requests_fraction: self.too_many_requests_fraction,
                retry_after_fraction: self.retry_after_fraction,
                retry_after_seconds: self.retry_after_seconds,
                latency_ms: self.latency_ms,
                hang_fraction: self.hang_fraction,
                hang_max_seconds: self.hang_max_seconds,
                redirect_fraction: self.redirect_fraction,
                redirect_location: self.redirect_location,
                not_mackerel_answer_fraction: self.not_mackerel_answer_fraction,
                drop_after_store_fraction: self.drop_after_store_fraction,
                requests_per_minute_per_key: self.requests_per_minute_per_key,
                max_body_bytes: self.max_body_bytes,
                fault_read_api: self.fault_read_api,
                seed: self.fault_seed,
            },
            state_file: self.state_file,
            ..Config::default()
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Args::parse().into_config();
    let standin = StandIn::start(config).await?;
    println!("Mackerel stand-in listening on {}", standin.base_url());
    shutdown_signal().await;
    standin.shutdown().await?;
    Ok(())
}
