//! The consumer's AWS side against moto server on loopback (started by
//! `scripts/test.sh`, URL in `MOTO_URL`): parked messages really reach the DLQ
//! with their reason attributes, and the API key is read from Secrets Manager.

mod support;

use std::time::Duration;

use sfn_mackerel_consumer::api_key::{KeyStore, SecretsManagerKey};
use sfn_mackerel_consumer::dlq::{attribute, SqsDeadLetters};
use sfn_mackerel_consumer::mackerel::HttpTransport;
use sfn_mackerel_consumer::{Consumer, Fate};
use sfn_mackerel_message::SetAsideReason;
use sfn_mackerel_testkit::local::{aws, moto_url, unique, LocalQueues, QueueSettings};
use support::*;

async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    expected: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        messages.extend(out.messages().iter().cloned());
        if messages.len() >= expected {
            break;
        }
    }
    messages
}

/// A consumer posting to `server` and parking in the SQS queue `dlq_url`.
async fn consumer_parking_in(
    server: &ScriptedMackerel,
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
) -> Consumer<HttpTransport, SqsDeadLetters> {
    let settings = settings(&server.base_url(), &[]);
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(sfn_mackerel_consumer::api_key::FixedKey(
        sfn_mackerel_consumer::api_key::ApiKey::new("k").unwrap(),
    ))
    .await
    .unwrap();
    let dead_letters = SqsDeadLetters {
        client: sqs.clone(),
        queue_url: dlq_url.to_owned(),
    };
    Consumer::new(settings, transport, keys, dead_letters)
}

#[tokio::test]
async fn set_aside_messages_arrive_in_the_dlq_unchanged_with_their_reason() {
    let aws = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dlq_url = LocalQueues::create("results", QueueSettings::default())
        .await
        .dlq_url;
    let server = ScriptedMackerel::start(vec![]).await;
    let consumer = consumer_parking_in(&server, &sqs, &dlq_url).await;
    let old = result_body("svc", "glue.job.a.failed", 1.0, now() - 2 * 86_400);
    let messages = vec![
        inbound("malformed-1", "{\"service\": "),
        inbound("old-1", &old),
        inbound(
            "good-1",
            &result_body("svc", "glue.job.a.failed", 0.0, now()),
        ),
    ];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(20)))
        .await;

    assert_eq!(
        report.fates,
        vec![
            Fate::Parked(SetAsideReason::MalformedJson),
            Fate::Parked(SetAsideReason::TooOld),
            Fate::Posted
        ]
    );
    let parked = receive_all(&sqs, &dlq_url, 2).await;
    assert_eq!(parked.len(), 2);
    for message in &parked {
        let attrs = message.message_attributes().unwrap();
        let text = |name: &str| attrs[name].string_value().unwrap().to_owned();
        let source_id = text(attribute::SOURCE_MESSAGE_ID);
        let original = messages.iter().find(|m| m.id == source_id).unwrap();
        assert_eq!(
            message.body().unwrap(),
            original.body,
            "body must be unchanged for a redrive"
        );
        let expected_reason = if source_id == "old-1" {
            "too_old"
        } else {
            "malformed_json"
        };
        assert_eq!(text(attribute::REASON), expected_reason);
        assert!(!text(attribute::REASON_DETAIL).is_empty());
        assert_eq!(
            text(attribute::SOURCE_SENT_TIMESTAMP),
            original.sent_at_ms.unwrap().to_string()
        );
        assert_eq!(
            text(attribute::SOURCE_QUEUE_ARN),
            "arn:aws:sqs:us-east-1:123456789012:results"
        );
    }
}

#[tokio::test]
async fn a_missing_dlq_turns_parking_into_batch_item_failures() {
    let aws = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let server = ScriptedMackerel::start(vec![]).await;
    let missing = format!("{}/123456789012/{}", moto_url(), unique("no-such-queue"));
    let consumer = consumer_parking_in(&server, &sqs, &missing).await;
    let messages = vec![inbound("bad", "nope")];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(20)))
        .await;

    assert_eq!(report.failed_ids(&messages), vec!["bad"]);
}

#[tokio::test]
async fn the_api_key_is_read_from_secrets_manager_in_either_form() {
    let aws = aws().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    for (name, value) in [
        (unique("mackerel-bare"), "key-from-bare-secret".to_owned()),
        (
            unique("mackerel-json"),
            r#"{"MACKEREL_API_KEY": "key-from-json-secret"}"#.to_owned(),
        ),
    ] {
        secrets
            .create_secret()
            .name(&name)
            .secret_string(&value)
            .send()
            .await
            .unwrap();
        let store = KeyStore::load(SecretsManagerKey {
            client: secrets.clone(),
            secret_id: name.clone(),
        })
        .await
        .unwrap();
        let key = store.current().await;
        assert!(key.expose().starts_with("key-from-"), "{name}");
        assert!(value.contains(key.expose()));
    }
}

#[tokio::test]
async fn a_missing_secret_stops_the_cold_start_with_what_to_check() {
    let aws = aws().await;
    let error = KeyStore::load(SecretsManagerKey {
        client: aws_sdk_secretsmanager::Client::new(&aws),
        secret_id: unique("absent"),
    })
    .await
    .err()
    .expect("a missing secret must fail");
    let message = error.to_string();
    assert!(
        message.contains("secretsmanager:GetSecretValue"),
        "{message}"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up_when_mackerel_refuses_the_old_key() {
    let aws = aws().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let name = unique("mackerel-rotating");
    secrets
        .create_secret()
        .name(&name)
        .secret_string("old-key")
        .send()
        .await
        .unwrap();
    let server = ScriptedMackerel::start(vec![Answer::status(403)]).await;
    let settings = settings(&server.base_url(), &[]);
    let transport = HttpTransport::new(&settings.api_base).unwrap();
    let keys = KeyStore::load(SecretsManagerKey {
        client: secrets.clone(),
        secret_id: name.clone(),
    })
    .await
    .unwrap();
    secrets
        .put_secret_value()
        .secret_id(&name)
        .secret_string("new-key")
        .send()
        .await
        .unwrap();
    let consumer = Consumer::new(settings, transport, keys, MemoryDeadLetters::default());
    let messages = vec![inbound("m", &result_body("svc", "a", 1.0, now()))];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(20)))
        .await;

    let used: Vec<Option<String>> = server.seen().into_iter().map(|r| r.api_key).collect();
    assert_eq!(used, vec![Some("old-key".into()), Some("new-key".into())]);
    assert_eq!(report.fates, vec![Fate::Posted]);
}
