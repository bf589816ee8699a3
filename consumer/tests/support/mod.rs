//! Builders shared by the consumer's integration tests: a scripted
//! Mackerel-like HTTP server on loopback, settings, consumers and messages.
//! The in-memory doubles and the local world come from `sfn-mackerel-testkit`.
//! (Each test binary uses a different part of it.)
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::dlq::DeadLetters;
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::{Consumer, InboundMessage};

pub mod pipeline;

pub use sfn_mackerel_testkit::doubles::MemoryDeadLetters;
pub use sfn_mackerel_testkit::local::now;

/// A message as SQS would hand it over, sent `age` seconds ago.
pub fn inbound(id: &str, body: &str) -> InboundMessage {
    InboundMessage {
        id: id.to_owned(),
        body: body.to_owned(),
        sent_at_ms: Some(now() * 1000),
        first_sent_attribute: None,
        source_queue_arn: Some("arn:aws:sqs:us-east-1:123456789012:results".into()),
    }
}

pub fn result_body(service: &str, name: &str, value: f64, time: i64) -> String {
    serde_json::json!({"service": service, "name": name, "value": value, "time": time}).to_string()
}

/// One scripted answer of the fake server.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        let body = if status == 200 {
            r#"{"success":true}"#.to_owned()
        } else {
            format!(r#"{{"error":{{"message":"scripted {status}"}}}}"#)
        };
        Self {
            status,
            body,
            retry_after: None,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// An answer with this status and body, whatever Mackerel would say.
    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            body: body.to_owned(),
            ..Self::status(status)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fake server saw.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub service: String,
    pub api_key: Option<String>,
    pub body: serde_json::Value,
}

/// Picks the answer to a body when the script has none left (else 200).
pub type AnswerRule = Arc<dyn Fn(&str) -> Option<Answer> + Send + Sync>;

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    rule: Option<AnswerRule>,
    seen: Vec<SeenRequest>,
}

/// An HTTP server on 127.0.0.1 answering tsdb posts from a script (then 200s).
pub struct ScriptedMackerel {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedMackerel {
    pub async fn start(answers: Vec<Answer>) -> Self {
        Self::start_scripted(answers, None).await
    }

    /// A server that answers each body by `rule` (200 where it says nothing).
    pub async fn start_with_rule(rule: AnswerRule) -> Self {
        Self::start_scripted(Vec::new(), Some(rule)).await
    }

    async fn start_scripted(answers: Vec<Answer>, rule: Option<AnswerRule>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.into(),
            rule,
            seen: Vec::new(),
        }));
        let app = Router::new()
            // Any method: a client that followed a redirect would come back with a GET.
            .route("/api/v0/services/{service}/tsdb", any(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, script, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.script.lock().unwrap().seen.clone()
    }
}

impl Drop for ScriptedMackerel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let next = {
        let mut script = script.lock().unwrap();
        script.seen.push(SeenRequest {
            service,
            api_key: headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        });
        let by_rule = script.rule.as_ref().and_then(|rule| rule(&body));
        script
            .answers
            .pop_front()
            .or(by_rule)
            .unwrap_or(Answer::status(200))
    };
    if !next.delay.is_zero() {
        tokio::time::sleep(next.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(next.status).unwrap(),
        [("content-type", "application/json")],
        next.body,
    )
        .into_response();
    if let Some(value) = next.retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    for (name, value) in next.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// Settings for tests: a direct key, tiny backoff, short timeouts.
pub fn settings(api_base: &str, extra: &[(&str, &str)]) -> Settings {
    let mut vars: std::collections::HashMap<String, String> = [
        ("MACKEREL_API_KEY", "test-key-do-not-log"),
        ("DLQ_URL", "http://127.0.0.1:1/dlq"),
        ("MACKEREL_API_BASE", api_base),
        ("BACKOFF_BASE_MS", "5"),
        ("BACKOFF_CAP_MS", "20"),
        ("MACKEREL_TIMEOUT_MS", "500"),
        ("DEADLINE_MARGIN_MS", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::from_vars(&vars).unwrap()
}

/// A consumer posting over HTTP to `server`, parking into memory.
pub async fn http_consumer(
    server: &ScriptedMackerel,
    extra: &[(&str, &str)],
) -> (
    Consumer<HttpTransport, MemoryDeadLetters>,
    MemoryDeadLetters,
) {
    let settings = settings(&server.base_url(), extra);
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(FixedKey(ApiKey::new("test-key-do-not-log").unwrap()))
        .await
        .unwrap();
    let dlq = MemoryDeadLetters::default();
    (Consumer::new(settings, transport, keys, dlq.clone()), dlq)
}

/// A consumer posting over HTTP to `settings.api_base` with the key
/// `test-key-do-not-log`, parking into `dead_letters`.
pub async fn consumer_with<D: DeadLetters>(
    settings: Settings,
    dead_letters: D,
) -> Consumer<HttpTransport, D> {
    sfn_mackerel_testkit::local::http_consumer(settings, "test-key-do-not-log", dead_letters).await
}

/// A consumer posting through `transport` with the key `test-key-do-not-log`.
pub async fn consumer_with_transport<
    T: sfn_mackerel_consumer::delivery::Transport,
    D: DeadLetters,
>(
    settings: Settings,
    transport: T,
    dead_letters: D,
) -> Consumer<T, D> {
    let keys = KeyStore::load(FixedKey(ApiKey::new("test-key-do-not-log").unwrap()))
        .await
        .unwrap();
    Consumer::new(settings, transport, keys, dead_letters)
}

/// The consumer binary under test: the one cargo built, or
/// `SFN_MACKEREL_CONSUMER_BINARY` (scripts/build-arm64.sh points it at the arm64
/// build, run under qemu).
pub fn consumer_binary() -> String {
    std::env::var("SFN_MACKEREL_CONSUMER_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_sfn-mackerel-consumer").to_string())
}

/// The consumer binary with nothing of this process's environment but PATH,
/// AWS pointed at moto with test credentials, and a moved clock when the test
/// runs under one (scripts/clock-check.sh moves the child's too).
pub fn consumer_command() -> std::process::Command {
    let mut command = std::process::Command::new(consumer_binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", sfn_mackerel_testkit::local::moto_url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for name in ["LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

pub fn deadline_in(duration: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + duration
}
