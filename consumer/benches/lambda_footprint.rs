//! Cold start, peak memory and handling time of the consumer's Lambda binary,
//! played by the test kit's Lambda Runtime API (the same fake the end-to-end
//! test uses). Each iteration starts a fresh process, so every figure is a cold one:
//!
//! - init: from just before the process is spawned to its first
//!   `GET /2018-06-01/runtime/invocation/next` (settings, AWS config, the API key
//!   from Secrets Manager, the HTTP client), and VmHWM at that moment;
//! - handling: from handing out the event to receiving its `/response` (moving
//!   the event over loopback, posting to Mackerel, parking in the DLQ);
//! - peak RSS: VmHWM of the process after it answered.
//!
//! The binary's path must be absolute: cargo runs a bench in its package's directory.
//! Run by `scripts/bench/lambda-footprint.sh`, which builds the release binary
//! and starts moto (MOTO_URL); the bench creates the secret, the Mackerel
//! stand-in (in-process) and a fresh DLQ per cold start.
//!
//!     cargo bench -p sfn-mackerel-consumer --bench lambda_footprint -- \
//!         --binary "$PWD/target/release/sfn-mackerel-consumer" [--iterations 5] [--records 10000] \
//!         [--services 5] [--malformed-percent 1] [--timeout 120] [--log FILE] [--json FILE]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sfn_mackerel_testkit::local::{
    api_key_secret, depth, moto_url, now, standin, LocalQueues, QueueSettings,
};
use sfn_mackerel_testkit::runtime_api::{sqs_event, RuntimeApi};

const API_KEY: &str = "footprint-bench-key";
const JOBS: [&str; 5] = [
    "make_rawdata",
    "make_alarm",
    "make_order",
    "load_users",
    "score",
];

struct Options {
    binary: String,
    iterations: usize,
    records: usize,
    services: usize,
    malformed_percent: f64,
    timeout: Duration,
    log: Option<String>,
    json: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut given: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        // cargo bench passes `--bench` to every bench target.
        if flag == "--bench" {
            continue;
        }
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        given.insert(name.to_owned(), value);
    }
    fn number<T: std::str::FromStr>(
        given: &HashMap<String, String>,
        name: &str,
        default: T,
    ) -> Result<T, String> {
        match given.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("--{name} {text:?} is not a number")),
        }
    }
    Ok(Options {
        binary: given
            .get("binary")
            .cloned()
            .ok_or("--binary PATH (the release sfn-mackerel-consumer) is required")?,
        iterations: number(&given, "iterations", 5)?,
        records: number(&given, "records", 10_000)?,
        services: number(&given, "services", 5)?,
        malformed_percent: number(&given, "malformed-percent", 1.0)?,
        timeout: Duration::from_secs_f64(number(&given, "timeout", 120.0)?),
        log: given.get("log").cloned(),
        json: given.get("json").cloned(),
    })
}

fn rfc3339(epoch_seconds: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Single- and two-value messages over the last hour, some malformed.
fn event(options: &Options, now: i64) -> String {
    let malformed_every = if options.malformed_percent > 0.0 {
        (100.0 / options.malformed_percent).round() as usize
    } else {
        0
    };
    let records: Vec<(String, String)> = (0..options.records)
        .map(|i| {
            let service = format!("team-{}", i % options.services);
            let job = format!("{}_{}", JOBS[i % JOBS.len()], i % 8);
            let at = now - ((i as i64) * 7) % 3600;
            let body = if malformed_every > 0 && i % malformed_every == malformed_every - 1 {
                r#"{"service": "broken"#.to_owned()
            } else if i % 2 == 0 {
                serde_json::json!({
                    "service": service, "time": rfc3339(at),
                    "metrics": [
                        {"name": format!("prd.glue.job.{job}.failed"), "value": i64::from(i % 17 == 0)},
                        {"name": format!("prd.glue.job.{job}.seconds"), "value": 30 + i % 300},
                    ],
                })
                .to_string()
            } else {
                serde_json::json!({"service": service, "name": format!("prd.glue.job.{job}.failed"), "value": 0, "time": at})
                    .to_string()
            };
            (format!("{i:08x}-0000-0000-0000-000000000000"), body)
        })
        .collect();
    sqs_event(&records, 5_000)
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS"), field("VmHWM"))
}

#[derive(serde::Serialize)]
struct ColdStart {
    init_ms: f64,
    init_hwm_kib: u64,
    handling_ms: f64,
    peak_rss_kib: u64,
    rss_after_kib: u64,
    batch_item_failures: usize,
    parked: u64,
}

/// Stops the child on drop, so a failed iteration leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn cold_start(
    options: &Options,
    event: &str,
    secret_id: &str,
    mackerel: &str,
    iteration: usize,
) -> Result<ColdStart, String> {
    let api = RuntimeApi::start().await;
    let queues = LocalQueues::create("footprint", QueueSettings::default()).await;
    let log = match &options.log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log {path}: {e}"))?,
        ),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let child = Command::new(&options.binary)
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "sfn-mackerel-consumer")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/sfn-mackerel-consumer",
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_ENDPOINT_URL", moto_url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MACKEREL_API_KEY_SECRET_ID", secret_id)
        .env("MACKEREL_API_BASE", mackerel)
        .env("DLQ_URL", &queues.dlq_url)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", options.binary))?;
    let running = Running(child);
    let pid = running.0.id();
    let first_next = api
        .first_next(options.timeout)
        .await
        .ok_or("the binary never asked for an invocation: see its log (--log FILE)")?;
    let (_, init_hwm_kib) = memory_kib(pid);
    let request_id = format!("cold-start-{iteration}");
    api.invoke(&request_id, event.to_owned(), Duration::from_secs(60));
    let answered = api
        .answer_to(&request_id, options.timeout)
        .await
        .ok_or_else(|| {
            format!(
                "no answer within {:?}: see the binary's log",
                options.timeout
            )
        })?;
    let (rss_after_kib, peak_rss_kib) = memory_kib(pid);
    drop(running);
    if let Some(error) = answered.error {
        return Err(format!("the invocation failed: {error}"));
    }
    let failures = answered
        .response
        .as_ref()
        .and_then(|r| r.get("batchItemFailures"))
        .and_then(|f| f.as_array())
        .map_or(0, Vec::len);
    Ok(ColdStart {
        init_ms: first_next.duration_since(started).as_secs_f64() * 1e3,
        init_hwm_kib,
        handling_ms: answered.handling().unwrap_or_default().as_secs_f64() * 1e3,
        peak_rss_kib,
        rss_after_kib,
        batch_item_failures: failures,
        parked: depth(&queues.sqs, &queues.dlq_url).await,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn run(options: Options) -> Result<bool, String> {
    let services: Vec<String> = (0..options.services).map(|i| format!("team-{i}")).collect();
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let mackerel = standin(API_KEY, None, &names).await;
    let secret_id = api_key_secret(API_KEY).await;
    let event = event(&options, now());
    println!(
        "event: {} records, {} bytes, {} services, {}% malformed",
        options.records,
        event.len(),
        options.services,
        options.malformed_percent
    );
    let mut runs = Vec::new();
    for iteration in 1..=options.iterations {
        let run = cold_start(
            &options,
            &event,
            &secret_id,
            &mackerel.base_url(),
            iteration,
        )
        .await?;
        println!(
            "  cold start {iteration}: init {:6.1} ms (VmHWM {:5.1} MiB), handling {:7.1} ms, peak RSS {:5.1} MiB, parked {}, batch item failures {}",
            run.init_ms,
            run.init_hwm_kib as f64 / 1024.0,
            run.handling_ms,
            run.peak_rss_kib as f64 / 1024.0,
            run.parked,
            run.batch_item_failures
        );
        runs.push(run);
    }
    let of = |figure: fn(&ColdStart) -> f64| median(runs.iter().map(figure).collect());
    let (init, handling) = (of(|r| r.init_ms), of(|r| r.handling_ms));
    let (peak, after_init) = (
        of(|r| r.peak_rss_kib as f64) / 1024.0,
        of(|r| r.init_hwm_kib as f64) / 1024.0,
    );
    println!(
        "median of {}: init {init:.1} ms, handling {handling:.1} ms, peak RSS {peak:.1} MiB (after init {after_init:.1} MiB)",
        runs.len()
    );
    if let Some(path) = &options.json {
        let report = serde_json::json!({
            "event_bytes": event.len(),
            "runs": runs,
            "medians": {"init_ms": init, "handling_ms": handling, "peak_rss_mib": peak, "init_hwm_mib": after_init},
        });
        std::fs::write(path, report.to_string())
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(runs.iter().all(|r| r.batch_item_failures == 0))
}

#[tokio::main]
async fn main() {
    let outcome = match options() {
        Ok(options) => run(options).await,
        Err(message) => Err(message),
    };
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("some messages were reported as batch item failures: see the binary's log");
            std::process::exit(1);
        }
        Err(message) => {
            eprintln!("lambda_footprint: {message}");
            std::process::exit(2);
        }
    }
}
