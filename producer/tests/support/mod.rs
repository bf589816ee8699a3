//! Shared by the CLI's integration tests: moto server (from `MOTO_URL`, started
//! by scripts/test.sh), queue builders, parked-message builders shaped like the
//! consumer's, and running the built `sfn-mackerel` binary.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use sfn_mackerel_message::dead_letter as attribute;
use sfn_mackerel_producer::aws::Sqs;

pub mod pipeline;

pub use sfn_mackerel_testkit::local::{moto_url, now, unique};
use sfn_mackerel_testkit::local::{LocalQueues, QueueSettings};

/// An SQS client on moto.
pub async fn client() -> aws_sdk_sqs::Client {
    sfn_mackerel_testkit::local::sqs().await
}

/// The CLI's SQS handle, pointed at moto.
pub async fn sqs() -> Sqs {
    Sqs {
        client: client().await,
        endpoint: moto_url(),
    }
}

pub async fn create_queue(name: &str) -> String {
    client()
        .await
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// A source queue and its DLQ, wired by a redrive policy. Returns (source, dlq).
pub async fn queue_pair(prefix: &str) -> (String, String) {
    queue_pair_moving_after(prefix, QueueSettings::default().max_receive_count).await
}

/// As [`queue_pair`], the redrive policy moving a message after `max_receives`
/// receives. The visibility timeout is SQS's default (30 s), not the module's:
/// tests that receive a message again wait for it.
pub async fn queue_pair_moving_after(prefix: &str, max_receives: u32) -> (String, String) {
    let settings = QueueSettings::default()
        .visibility(30)
        .moving_after(max_receives);
    let queues = LocalQueues::create(prefix, settings).await;
    (queues.source_url, queues.dlq_url)
}

fn text(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

/// Puts a message in the DLQ the way the consumer parks it (`reason: None`: the
/// way the redrive policy moves it, without attributes).
pub async fn park(dlq: &str, body: &str, reason: Option<&str>) {
    park_first_sent_at(dlq, body, reason, now() * 1000).await;
}

/// As [`park`], with the time the message was first sent (epoch milliseconds).
pub async fn park_first_sent_at(dlq: &str, body: &str, reason: Option<&str>, first_sent_ms: i64) {
    let mut send = client()
        .await
        .send_message()
        .queue_url(dlq)
        .message_body(body);
    if let Some(reason) = reason {
        send = send
            .message_attributes(attribute::REASON, text(reason))
            .message_attributes(
                attribute::REASON_DETAIL,
                text(&format!("detail of {reason}")),
            )
            .message_attributes(attribute::SOURCE_MESSAGE_ID, text("source-id"))
            .message_attributes(
                attribute::SOURCE_SENT_TIMESTAMP,
                text(&first_sent_ms.to_string()),
            );
    }
    send.send().await.unwrap();
}

/// A body tagged like a flood's, so tests can tell messages apart.
pub fn tagged_body(seq: u64) -> String {
    format!(
        r#"{{"load_test_id":"lt-test","seq":{seq},"service":"svc-a","name":"glue.job-01.failed","value":1,"time":{}}}"#,
        now()
    )
}

/// Receives everything in a queue (and deletes it), for assertions.
pub async fn drain(url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let sqs = client().await;
    let mut all = Vec::new();
    let mut empty = 0;
    for _ in 0..200 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages().to_vec();
        if messages.is_empty() {
            empty += 1;
            if empty >= 2 {
                break;
            }
            continue;
        }
        empty = 0;
        for m in &messages {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        all.extend(messages);
    }
    all
}

/// Messages waiting or in flight in a queue.
pub async fn depth(url: &str) -> u64 {
    sfn_mackerel_testkit::local::depth(&client().await, url).await
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON (for `--json` runs).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `sfn-mackerel ARGS` against moto with static credentials, optionally feeding stdin.
pub async fn cli_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    cli_with(args, stdin, &[]).await
}

/// Runs `sfn-mackerel ARGS` with these environment variables set too.
pub async fn cli_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    cli_with(args, None, env).await
}

/// `--endpoint-url MOTO` followed by `args`, with these environment variables set too.
pub async fn cli_moto_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let moto = moto_url();
    let mut all = vec!["--endpoint-url", moto.as_str()];
    all.extend_from_slice(args);
    cli_env(&all, env).await
}

async fn cli_with(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sfn-mackerel"));
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("MACKEREL_API_KEY")
        .env_remove("MACKEREL_API_BASE")
        .env_remove("SFN_MACKEREL_QUEUE_URL")
        .env_remove("SFN_MACKEREL_DLQ_URL")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the sfn-mackerel binary runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the CLI finishes within 2 minutes")
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub async fn cli(args: &[&str]) -> Run {
    cli_with_stdin(args, None).await
}

/// `--endpoint-url MOTO` followed by `args`.
pub async fn cli_moto(args: &[&str]) -> Run {
    let moto = moto_url();
    let mut all = vec!["--endpoint-url", moto.as_str()];
    all.extend_from_slice(args);
    cli(&all).await
}

/// A URL where nothing listens (a port just bound and released).
pub fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A queue URL on moto that names no queue.
pub fn missing_queue() -> String {
    format!("{}/123456789012/{}", moto_url(), unique("no-such-queue"))
}
