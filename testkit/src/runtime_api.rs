//! The Lambda Runtime API on loopback: plays the Lambda service for the real
//! consumer binary, so the end-to-end test and the footprint bench run the
//! `bootstrap` exactly as Lambda does, with one fake between them. It serves
//! the endpoints `lambda_runtime` calls
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>) and
//! records when each call came, for the bench's timings.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

const PREFIX: &str = "/2018-06-01/runtime";
/// The ARN every invocation names.
pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:sfn-mackerel-consumer";
/// How long one `/next` holds its poll when nothing is queued (Lambda holds it
/// until an event comes; a bounded hold keeps a forgotten process from hanging).
const NEXT_HOLD: Duration = Duration::from_secs(60);

/// One event handed to the function, and what it answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub handed_out_at: Option<Instant>,
    pub answered_at: Option<Instant>,
    /// The `/response` body, as JSON when it parses.
    pub response: Option<serde_json::Value>,
    /// The `/error` body.
    pub error: Option<String>,
}

impl Invocation {
    /// From handing out the event to its answer.
    pub fn handling(&self) -> Option<Duration> {
        self.answered_at?
            .checked_duration_since(self.handed_out_at?)
    }
}

/// What `Lambda-Runtime-Deadline-Ms` says for an invocation.
#[derive(Debug, Clone)]
pub enum DeadlineHeader {
    /// Epoch milliseconds this far from when the event is handed out, as Lambda sends.
    In(Duration),
    /// This text, whatever it means (`cargo lambda watch` sends a duration).
    Raw(String),
}

#[derive(Default)]
struct Calls {
    pending: VecDeque<(String, String, DeadlineHeader)>,
    invocations: Vec<Invocation>,
    first_next_at: Option<Instant>,
    init_errors: Vec<String>,
    init_error_types: Vec<Option<String>>,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Calls>,
    queued: Notify,
    changed: Notify,
}

/// A running fake; its server stops when the test's runtime ends.
pub struct RuntimeApi {
    address: String,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next_invocation))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(invocation_response),
            )
            .route(
                &format!("{PREFIX}/invocation/{{id}}/error"),
                post(invocation_error),
            )
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address")
            .to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, shared }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an event; the function receives it with `time_left` until its deadline.
    pub fn invoke(&self, request_id: &str, event: String, time_left: Duration) {
        self.invoke_with(request_id, event, DeadlineHeader::In(time_left));
    }

    /// Queues an event with this deadline header.
    pub fn invoke_with(&self, request_id: &str, event: String, deadline: DeadlineHeader) {
        self.shared
            .calls
            .lock()
            .expect("not poisoned")
            .pending
            .push_back((request_id.to_owned(), event, deadline));
        self.shared.queued.notify_waiters();
        self.shared.queued.notify_one();
    }

    /// Waits (at most `limit`) for the function's first `/next`: its init is done.
    pub async fn first_next(&self, limit: Duration) -> Option<Instant> {
        self.wait_for(limit, |calls| calls.first_next_at).await
    }

    /// Waits (at most `limit`) until the invocation was answered, by `/response` or `/error`.
    pub async fn answer_to(&self, request_id: &str, limit: Duration) -> Option<Invocation> {
        self.wait_for(limit, |calls| {
            calls
                .invocations
                .iter()
                .find(|i| i.request_id == request_id && i.answered_at.is_some())
                .cloned()
        })
        .await
    }

    /// The `Lambda-Runtime-Function-Error-Type` header of each `/init/error`.
    pub fn init_error_types(&self) -> Vec<Option<String>> {
        self.shared
            .calls
            .lock()
            .expect("not poisoned")
            .init_error_types
            .clone()
    }

    /// What the function reported through `/init/error`.
    pub fn init_errors(&self) -> Vec<String> {
        self.shared
            .calls
            .lock()
            .expect("not poisoned")
            .init_errors
            .clone()
    }

    async fn wait_for<T>(
        &self,
        limit: Duration,
        mut found: impl FnMut(&Calls) -> Option<T>,
    ) -> Option<T> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(value) = found(&self.shared.calls.lock().expect("not poisoned")) {
                return Some(value);
            }
            if tokio::time::timeout_at(end, changed).await.is_err() {
                return found(&self.shared.calls.lock().expect("not poisoned"));
            }
        }
    }
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    {
        let mut calls = shared.calls.lock().expect("not poisoned");
        calls.first_next_at.get_or_insert_with(Instant::now);
    }
    shared.changed.notify_waiters();
    let end = tokio::time::Instant::now() + NEXT_HOLD;
    loop {
        let queued = shared.queued.notified();
        let next = {
            let mut calls = shared.calls.lock().expect("not poisoned");
            let next = calls.pending.pop_front();
            if let Some((id, _, _)) = &next {
                calls.invocations.push(Invocation {
                    request_id: id.clone(),
                    handed_out_at: Some(Instant::now()),
                    answered_at: None,
                    response: None,
                    error: None,
                });
            }
            next
        };
        if let Some((id, event, deadline)) = next {
            let deadline = match deadline {
                DeadlineHeader::In(time_left) => (epoch_ms() + time_left.as_millis()).to_string(),
                DeadlineHeader::Raw(text) => text,
            };
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline),
                (
                    "lambda-runtime-invoked-function-arn",
                    FUNCTION_ARN.to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_owned(),
                ),
                ("content-type", "application/json".to_owned()),
            ] {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
            return (headers, event).into_response();
        }
        if tokio::time::timeout_at(end, queued).await.is_err() {
            return StatusCode::NO_CONTENT.into_response();
        }
    }
}

fn record_answer(shared: &Shared, id: &str, answer: impl FnOnce(&mut Invocation)) -> StatusCode {
    let known = {
        let mut calls = shared.calls.lock().expect("not poisoned");
        match calls.invocations.iter_mut().find(|i| i.request_id == id) {
            Some(invocation) => {
                invocation.answered_at = Some(Instant::now());
                answer(invocation);
                true
            }
            None => false,
        }
    };
    shared.changed.notify_waiters();
    if known {
        StatusCode::ACCEPTED
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    record_answer(&shared, &id, |invocation| invocation.response = Some(value))
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    record_answer(&shared, &id, |invocation| invocation.error = Some(body))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    {
        let mut calls = shared.calls.lock().expect("not poisoned");
        calls.init_errors.push(body);
        calls.init_error_types.push(
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
    }
    shared.changed.notify_waiters();
    StatusCode::ACCEPTED
}

/// An SQS event as Lambda's event source mapping delivers it: one record per
/// `(message id, body)`, first received now, sent `sent_ms_ago` earlier.
pub fn sqs_event(records: &[(String, String)], sent_ms_ago: u64) -> String {
    let now_ms = epoch_ms();
    sfn_mackerel_message::sqs_event::lambda_sqs_event(
        records,
        now_ms.saturating_sub(u128::from(sent_ms_ago)),
        now_ms,
        &sfn_mackerel_message::sqs_event::EventSource {
            queue_arn: "arn:aws:sqs:us-east-1:123456789012:results",
            region: "us-east-1",
        },
    )
}
