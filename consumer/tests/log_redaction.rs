//! The API key never reaches a log line, at any level, from this crate or from
//! the HTTP and AWS libraries under it, even when Mackerel refuses it.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfn_mackerel_consumer::api_key::{ApiKey, KeyError, KeyFetcher, KeyStore};
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::Consumer;
use support::*;

const KEY: &str = "mkr-SECRET-0123456789abcdef";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct SameKey;

impl KeyFetcher for SameKey {
    async fn fetch(&self) -> Result<ApiKey, KeyError> {
        ApiKey::new(KEY)
    }
}

#[tokio::test]
async fn the_api_key_appears_in_no_log_line_even_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = ScriptedMackerel::start(vec![
        Answer::status(401),
        Answer::status(403),
        Answer::status(500),
        Answer::status(429).retry_after("0"),
    ])
    .await;
    let settings = settings(&server.base_url(), &[("SERVICE_CONCURRENCY", "1")]);
    tracing::debug!(settings = ?settings, "settings");
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(SameKey).await.unwrap();
    let consumer = Consumer::new(settings, transport, keys, MemoryDeadLetters::default());
    let messages = vec![
        inbound("refused", &result_body("svc-a", "a", 1.0, now())),
        inbound("retried", &result_body("svc-b", "b", 1.0, now())),
        inbound("malformed", "{"),
    ];

    consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("batch done"),
        "the capture saw nothing:\n{logs}"
    );
    assert!(logs.contains("message set aside"), "{logs}");
    assert_eq!(
        server.seen()[0].api_key.as_deref(),
        Some(KEY),
        "the key was sent"
    );
    assert!(!logs.contains(KEY), "the API key leaked into the logs");
    assert!(
        !logs.contains("SECRET-0123"),
        "part of the API key leaked into the logs"
    );
}
