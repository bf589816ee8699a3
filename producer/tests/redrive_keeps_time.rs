//! A redrive never restamps a value: a message without a `time` of its own
//! takes the time it was first sent, which travels with it through the DLQ and
//! back (`SourceSentTimestamp`), however much later the redrive runs. Values
//! that have grown older than Mackerel keeps are parked again as `too_old`
//! instead of being posted as fresh.

mod support;

use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use sfn_mackerel_message::dead_letter as attribute;
use support::pipeline::*;
use support::*;

const NO_TIME: &str = r#"{"service":"svc-a","name":"glue.job-01.failed","value":1}"#;

#[tokio::test]
async fn a_value_parked_without_time_lands_in_its_original_minute_after_a_redrive() {
    let (queue, dlq) = queue_pair("keep-time").await;
    let mackerel = standin().await;
    // Parked by the consumer ten minutes ago.
    let first_sent = (now() - 600) * 1000;
    park_first_sent_at(&dlq, NO_TIME, Some("unknown_service"), first_sent).await;

    let redrive = cli_moto(&["dlq", "redrive", "--dlq-url", &dlq]).await;
    assert_eq!(redrive.code, 0, "{}", redrive.stderr);
    run_consumer(&queue, &dlq, &mackerel.base_url()).await;

    let points = mackerel.dump().points("svc-a", "glue.job-01.failed");
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(
        points[0].time,
        first_sent / 1000 / 60 * 60,
        "posted in the minute it was first sent, not the minute of the redrive"
    );
    mackerel.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_value_first_sent_more_than_a_day_ago_is_parked_as_too_old_not_posted() {
    let (queue, dlq) = queue_pair("keep-time-old").await;
    let mackerel = standin().await;
    park_first_sent_at(
        &dlq,
        NO_TIME,
        Some("unknown_service"),
        (now() - 25 * 3600) * 1000,
    )
    .await;

    let redrive = cli_moto(&["dlq", "redrive", "--dlq-url", &dlq]).await;
    assert_eq!(redrive.code, 0, "{}", redrive.stderr);
    run_consumer(&queue, &dlq, &mackerel.base_url()).await;

    assert!(mackerel
        .dump()
        .points("svc-a", "glue.job-01.failed")
        .is_empty());
    let parked = drain(&dlq).await;
    assert_eq!(parked.len(), 1);
    let reason = parked[0]
        .message_attributes()
        .and_then(|a| a.get(attribute::REASON))
        .and_then(|v| v.string_value());
    assert_eq!(reason, Some("too_old"));
    mackerel.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_message_the_redrive_policy_moved_goes_back_with_its_first_send_time() {
    // A queue whose redrive policy moves a message after one receive.
    let (queue, dlq) = queue_pair_moving_after("policy", 1).await;
    let sqs = client().await;
    sqs.send_message()
        .queue_url(&queue)
        .message_body(NO_TIME)
        .send()
        .await
        .unwrap();
    let sent_at = |message: &aws_sdk_sqs::types::Message| -> String {
        message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .cloned()
            .unwrap()
    };
    let first = sqs
        .receive_message()
        .queue_url(&queue)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .unwrap();
    let first_sent = sent_at(&first.messages()[0]);
    // The second receive moves it to the DLQ; a second later, it is redriven.
    for _ in 0..20 {
        let _ = sqs
            .receive_message()
            .queue_url(&queue)
            .send()
            .await
            .unwrap();
        if depth(&dlq).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth(&dlq).await, 1, "the redrive policy moved it");
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let redrive = cli_moto(&["dlq", "redrive", "--dlq-url", &dlq]).await;
    assert_eq!(redrive.code, 0, "{}", redrive.stderr);
    assert!(
        redrive.stderr.contains("without a time of their own"),
        "a native move task would restamp it, so the manual path runs and says why: {}",
        redrive.stderr
    );

    let back = drain(&queue).await;
    assert_eq!(back.len(), 1);
    let carried = back[0]
        .message_attributes()
        .and_then(|a| a.get(attribute::SOURCE_SENT_TIMESTAMP))
        .and_then(|v| v.string_value())
        .map(str::to_owned);
    assert_eq!(carried, Some(first_sent.clone()));
    assert_ne!(sent_at(&back[0]), first_sent, "this copy was sent later");
}
