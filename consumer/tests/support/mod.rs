//! Test doubles and builders shared by the consumer's integration tests: a
//! scripted Mackerel-like HTTP server on loopback, an in-memory DLQ, and
//! message builders. (Each test binary uses a different part of it.)
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::dlq::{DeadLetters, ParkRequest};
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::{Consumer, InboundMessage};
use sfn_mackerel_message::SetAsideReason;

pub mod pipeline;

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A message as SQS would hand it over, sent `age` seconds ago.
pub fn inbound(id: &str, body: &str) -> InboundMessage {
    InboundMessage {
        id: id.to_owned(),
        body: body.to_owned(),
        sent_at_ms: Some(now() * 1000),
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
            delay: Duration::ZERO,
        }
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

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
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
        let script = Arc::new(Mutex::new(Script {
            answers: answers.into(),
            seen: Vec::new(),
        }));
        let app = Router::new()
            .route("/api/v0/services/{service}/tsdb", post(answer))
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
        script.answers.pop_front().unwrap_or(Answer::status(200))
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
    response
}

/// A DLQ kept in memory; can be told to refuse everything.
#[derive(Default, Clone)]
pub struct MemoryDeadLetters {
    pub parked: Arc<Mutex<Vec<(String, SetAsideReason, String)>>>,
    pub refuse: bool,
}

impl MemoryDeadLetters {
    pub fn parked(&self) -> Vec<(String, SetAsideReason, String)> {
        self.parked.lock().unwrap().clone()
    }
}

impl DeadLetters for MemoryDeadLetters {
    async fn park(&self, requests: &[ParkRequest<'_>]) -> Vec<Result<(), String>> {
        requests
            .iter()
            .map(|request| {
                if self.refuse {
                    return Err("scripted DLQ failure".to_owned());
                }
                self.parked.lock().unwrap().push((
                    request.message.id.clone(),
                    request.reason,
                    request.message.body.clone(),
                ));
                Ok(())
            })
            .collect()
    }
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
    let keys = KeyStore::load(FixedKey(ApiKey::new("test-key-do-not-log")))
        .await
        .unwrap();
    let dlq = MemoryDeadLetters::default();
    (Consumer::new(settings, transport, keys, dlq.clone()), dlq)
}

pub fn deadline_in(duration: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + duration
}
