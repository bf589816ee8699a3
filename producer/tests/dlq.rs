//! `dlq peek`, `dlq redrive` and `dlq purge` against moto: peeking removes
//! nothing, redrive says which path ran (moto has no native move task), filters
//! by reason, and an interrupted redrive loses no message; purge needs the
//! queue's name.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use sfn_mackerel_producer::cli::{RedriveArgs, RedriveMethod};
use sfn_mackerel_producer::dlq::redrive::{destination, manual, Stop};
use sfn_mackerel_producer::interrupt::Interrupt;
use sfn_mackerel_producer::load_shape::tag_of;
use support::*;

/// Parks `count` tagged messages with `reason`, numbered from `first`.
async fn park_tagged(dlq: &str, first: u64, count: u64, reason: Option<&str>) {
    for seq in first..first + count {
        park(dlq, &tagged_body(seq), reason).await;
    }
}

fn seqs(messages: &[aws_sdk_sqs::types::Message]) -> Vec<u64> {
    let mut seqs: Vec<u64> = messages
        .iter()
        .map(|m| tag_of(m.body().unwrap()).unwrap().1)
        .collect();
    seqs.sort_unstable();
    seqs
}

#[tokio::test]
async fn peek_groups_by_reason_and_leaves_every_message_in_the_dlq() {
    let (_, dlq) = queue_pair("peek").await;
    park_tagged(&dlq, 0, 3, Some("unknown_service")).await;
    park_tagged(&dlq, 3, 1, Some("malformed_json")).await;
    park_tagged(&dlq, 4, 2, None).await;

    let run = cli_moto(&["--json", "dlq", "peek", "--dlq-url", &dlq]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let counts: BTreeMap<String, u64> = report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["reason"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("unknown_service".to_owned(), 3),
            ("retries_exhausted".to_owned(), 2),
            ("malformed_json".to_owned(), 1)
        ])
    );
    assert_eq!(report["reasons"][0]["samples"].as_array().unwrap().len(), 2);
    // Handed back at once: all six can be received right away.
    assert_eq!(drain(&dlq).await.len(), 6);
}

#[tokio::test]
async fn peek_warns_about_values_mackerel_would_drop() {
    let (_, dlq) = queue_pair("peek-old").await;
    let old = format!(
        r#"{{"service":"svc-a","name":"glue.job-01.failed","value":1,"time":{}}}"#,
        now() - 30 * 3600
    );
    park(&dlq, &old, Some("unknown_service")).await;
    let run = cli_moto(&["dlq", "peek", "--dlq-url", &dlq]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("older than 24 h"), "{}", run.stderr);
    assert!(run.stdout.contains("unknown_service"), "{}", run.stdout);
}

#[tokio::test]
async fn peek_of_an_empty_dlq_is_fine() {
    let (_, dlq) = queue_pair("peek-empty").await;
    let run = cli_moto(&["dlq", "peek", "--dlq-url", &dlq]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("no messages"), "{}", run.stdout);
}

#[tokio::test]
async fn peek_of_a_missing_dlq_exits_3() {
    let run = cli_moto(&["dlq", "peek", "--dlq-url", &missing_queue()]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
}

#[tokio::test]
async fn redrive_falls_back_from_the_native_task_on_moto_and_says_so() {
    let (source, dlq) = queue_pair("redrive-auto").await;
    park_tagged(&dlq, 0, 12, Some("unknown_service")).await;

    let run = cli_moto(&["--json", "dlq", "redrive", "--dlq-url", &dlq]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["method"], "manual");
    assert!(
        report["why"]
            .as_str()
            .unwrap()
            .contains("StartMessageMoveTask"),
        "{report}"
    );
    assert!(
        run.stderr.contains("redrive method: manual"),
        "{}",
        run.stderr
    );
    assert_eq!(report["destination"], source.as_str());
    assert_eq!(report["figures"]["moved"], 12);

    let moved = drain(&source).await;
    assert_eq!(seqs(&moved), (0..12).collect::<Vec<u64>>());
    assert!(
        moved.iter().all(|m| m
            .message_attributes()
            .is_none_or(|a| !a.contains_key("Reason"))),
        "the DLQ's reason attributes stay behind"
    );
    assert_eq!(depth(&dlq).await, 0);
}

#[tokio::test]
async fn redrive_native_only_on_moto_exits_3_and_moves_nothing() {
    let (source, dlq) = queue_pair("redrive-native").await;
    park_tagged(&dlq, 0, 2, Some("unknown_service")).await;
    let run = cli_moto(&["dlq", "redrive", "--dlq-url", &dlq, "--method", "native"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("--method manual"), "{}", run.stderr);
    assert_eq!(depth(&source).await, 0);
    assert_eq!(drain(&dlq).await.len(), 2);
}

#[tokio::test]
async fn redrive_by_reason_moves_only_that_reason() {
    let (source, dlq) = queue_pair("redrive-reason").await;
    park_tagged(&dlq, 0, 5, Some("unknown_service")).await;
    park_tagged(&dlq, 5, 3, Some("malformed_json")).await;
    park_tagged(&dlq, 8, 2, None).await;

    let run = cli_moto(&[
        "--json",
        "dlq",
        "redrive",
        "--dlq-url",
        &dlq,
        "--reason",
        "unknown_service",
        "--reason",
        "retries_exhausted",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["figures"]["moved"], 7);
    assert_eq!(report["figures"]["skipped"], 3);
    assert_eq!(seqs(&drain(&source).await), vec![0, 1, 2, 3, 4, 8, 9]);
    assert_eq!(seqs(&drain(&dlq).await), vec![5, 6, 7]);
}

#[tokio::test]
async fn redrive_max_stops_after_that_many() {
    let (source, dlq) = queue_pair("redrive-max").await;
    park_tagged(&dlq, 0, 25, Some("unknown_service")).await;
    let run = cli_moto(&["--json", "dlq", "redrive", "--dlq-url", &dlq, "--max", "13"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["figures"]["moved"], 13);
    assert_eq!(drain(&source).await.len(), 13);
    assert_eq!(drain(&dlq).await.len(), 12);
}

#[tokio::test]
async fn redrive_dry_run_counts_and_moves_nothing() {
    let (source, dlq) = queue_pair("redrive-dry").await;
    park_tagged(&dlq, 0, 4, Some("unknown_service")).await;
    park_tagged(&dlq, 4, 1, Some("too_old")).await;
    let run = cli_moto(&[
        "--json",
        "dlq",
        "redrive",
        "--dlq-url",
        &dlq,
        "--reason",
        "unknown_service",
        "--dry-run",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["would_move"], 4);
    assert_eq!(depth(&source).await, 0);
    assert_eq!(drain(&dlq).await.len(), 5);
}

#[tokio::test]
async fn redrive_without_a_source_queue_asks_for_one() {
    let dlq = create_queue(&unique("orphan-dlq")).await;
    park_tagged(&dlq, 0, 1, Some("unknown_service")).await;
    let run = cli_moto(&["dlq", "redrive", "--dlq-url", &dlq, "--method", "manual"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--to-queue-url"), "{}", run.stderr);
    assert_eq!(drain(&dlq).await.len(), 1);
}

#[tokio::test]
async fn redrive_to_a_missing_queue_exits_3_and_keeps_the_messages() {
    let (_, dlq) = queue_pair("redrive-missing").await;
    park_tagged(&dlq, 0, 3, Some("unknown_service")).await;
    let run = cli_moto(&[
        "dlq",
        "redrive",
        "--dlq-url",
        &dlq,
        "--to-queue-url",
        &missing_queue(),
    ])
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(drain(&dlq).await.len(), 3);
}

fn redrive_args(dlq: &str, source: &str, rate: Option<f64>, visibility: i32) -> RedriveArgs {
    RedriveArgs {
        dlq_url: dlq.to_owned(),
        to_queue_url: Some(source.to_owned()),
        reason: Vec::new(),
        max: None,
        rate,
        method: RedriveMethod::Manual,
        dry_run: false,
        timeout: 60,
        visibility_timeout: visibility,
        no_wait: false,
    }
}

#[tokio::test]
async fn a_redrive_killed_halfway_loses_nothing_and_duplicates_at_most_the_batch_in_hand() {
    let (source, dlq) = queue_pair("redrive-killed").await;
    park_tagged(&dlq, 0, 60, Some("unknown_service")).await;
    let sqs = sqs().await;
    let args = redrive_args(&dlq, &source, Some(20.0), 2);
    let target = destination(&sqs, &args).await.unwrap();

    let (task_sqs, task_args, task_target) = (sqs.clone(), args.clone(), target.clone());
    let run = tokio::spawn(async move {
        manual(
            &task_sqs,
            &task_args,
            &task_target,
            &Interrupt::new(),
            |_| {},
        )
        .await
    });
    // At 20 msg/s, a third of the way through; then the process "dies" mid-batch.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    run.abort();
    let _ = run.await;
    let moved_before_kill = depth(&source).await;
    assert!((1..60).contains(&moved_before_kill), "{moved_before_kill}");

    // Messages in hand reappear in the DLQ after their visibility timeout; a second run finishes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rest = manual(
        &sqs,
        &redrive_args(&dlq, &source, None, 30),
        &target,
        &Interrupt::new(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(rest.stopped, Some(Stop::Empty));

    let delivered = seqs(&drain(&source).await);
    let mut distinct = delivered.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        (0..60).collect::<Vec<u64>>(),
        "no message is lost"
    );
    assert!(
        delivered.len() - distinct.len() <= 10,
        "duplicates only from the batch in hand: {delivered:?}"
    );
    assert_eq!(depth(&dlq).await, 0);
}

#[tokio::test]
async fn a_redrive_interrupted_by_the_operator_finishes_its_batch_and_duplicates_nothing() {
    let (source, dlq) = queue_pair("redrive-ctrlc").await;
    park_tagged(&dlq, 0, 40, Some("unknown_service")).await;
    let sqs = sqs().await;
    let args = redrive_args(&dlq, &source, Some(20.0), 30);
    let target = destination(&sqs, &args).await.unwrap();
    let interrupt = Interrupt::new();
    let trigger = interrupt.clone();
    let figures = manual(&sqs, &args, &target, &interrupt, move |f| {
        if f.moved >= 10 {
            trigger.trigger();
        }
    })
    .await
    .unwrap();
    assert_eq!(figures.stopped, Some(Stop::Interrupted));
    assert!(figures.moved >= 10 && figures.moved < 40);
    let moved = seqs(&drain(&source).await);
    let left = seqs(&drain(&dlq).await);
    assert_eq!(moved.len() as u64, figures.moved);
    let mut all: Vec<u64> = moved.into_iter().chain(left).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..40).collect::<Vec<u64>>(),
        "every message is in exactly one queue"
    );
}

#[tokio::test]
async fn purge_refuses_a_queue_that_is_no_ones_dlq() {
    let (queue, _) = queue_pair("purge-live").await;
    park_tagged(&queue, 0, 2, None).await;
    let name = queue.rsplit('/').next().unwrap().to_owned();

    let refused = cli_moto(&["dlq", "purge", "--dlq-url", &queue, "--confirm", &name]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--allow-non-dlq"),
        "{}",
        refused.stderr
    );
    assert_eq!(depth(&queue).await, 2, "the live queue kept its messages");

    let forced = cli_moto(&[
        "dlq",
        "purge",
        "--dlq-url",
        &queue,
        "--confirm",
        &name,
        "--allow-non-dlq",
    ])
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[tokio::test]
async fn purge_needs_the_queue_name_and_then_empties_the_dlq() {
    let (_, dlq) = queue_pair("purge").await;
    park_tagged(&dlq, 0, 3, Some("malformed_json")).await;
    let name = dlq.rsplit('/').next().unwrap().to_owned();

    let refused = cli_moto(&["dlq", "purge", "--dlq-url", &dlq]).await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains(&format!("--confirm {name}")),
        "{}",
        refused.stderr
    );
    let wrong = cli_moto(&[
        "dlq",
        "purge",
        "--dlq-url",
        &dlq,
        "--confirm",
        "other-queue",
    ])
    .await;
    assert_eq!(wrong.code, 2);
    let dry = cli_moto(&["--json", "dlq", "purge", "--dlq-url", &dlq, "--dry-run"]).await;
    assert_eq!(dry.json()["approximate_messages"], 3);
    assert_eq!(depth(&dlq).await, 3);

    let purged = cli_moto(&["dlq", "purge", "--dlq-url", &dlq, "--confirm", &name]).await;
    assert_eq!(purged.code, 0, "{}", purged.stderr);
    assert!(drain(&dlq).await.is_empty());
}

#[tokio::test]
async fn purge_of_a_missing_queue_exits_3() {
    let missing = missing_queue();
    let name = missing.rsplit('/').next().unwrap().to_owned();
    let run = cli_moto(&["dlq", "purge", "--dlq-url", &missing, "--confirm", &name]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
}
