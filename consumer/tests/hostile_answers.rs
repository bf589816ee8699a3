//! What a server that misbehaves gets from the consumer: no redirect followed
//! and the key sent nowhere else, no value counted as posted without Mackerel's
//! own success answer, no panic and no wait past the deadline whatever a
//! `Retry-After` says, and one refused value never parking its neighbours. The
//! values here are not job statuses (their reads are `alerting_e2e.rs`'s).

mod support;

use std::sync::Arc;
use std::time::Duration;

use sfn_mackerel_consumer::Fate;
use sfn_mackerel_message::SetAsideReason;
use support::*;

const KEY: &str = "test-key-do-not-log";
/// A fault seed whose first draw falls in the lower half (cut off) and a later one in the upper.
const CUT_OFF_FIRST_SEED: u64 = 7;

/// The stand-in with the service `svc`, answering with these faults.
async fn faulty_standin(faults: mackerel_standin::FaultConfig) -> mackerel_standin::RunningStandIn {
    let standin = mackerel_standin::StandIn::start(
        mackerel_standin::Config::new()
            .with_api_key(KEY)
            .with_service("svc"),
    )
    .await
    .unwrap();
    standin.set_faults(faults).unwrap();
    standin
}

fn results(ids: &[&str], service: &str) -> Vec<sfn_mackerel_consumer::InboundMessage> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            inbound(
                id,
                &result_body(service, &format!("job.{i:02}.seconds"), 1.0, now() - 60),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_redirect_is_never_followed_and_the_key_goes_to_no_other_host() {
    let elsewhere = ScriptedMackerel::start(vec![]).await;
    let location = format!("{}/api/v0/services/svc/tsdb", elsewhere.base_url());
    let server =
        ScriptedMackerel::start(vec![Answer::raw(302, "").header("location", &location)]).await;
    // 1 KiB bodies: the service's values need several requests.
    let (consumer, dlq) = http_consumer(&server, &[("MAX_REQUEST_BYTES", "1024")]).await;
    let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    let messages = results(&ids, "svc");

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert!(elsewhere.seen().is_empty(), "the redirect was followed");
    assert_eq!(
        server.seen().len(),
        1,
        "the redirect applies to the rest of the service's requests"
    );
    assert!(report
        .fates
        .iter()
        .all(|f| *f == Fate::Parked(SetAsideReason::MackerelRedirected)));
    assert_eq!(report.summary.values_posted, 0);
    let parked = dlq.parked();
    assert_eq!(parked.len(), 40);
    assert!(SetAsideReason::MackerelRedirected.is_redrivable());
}

#[tokio::test]
async fn the_redirect_detail_names_where_it_pointed() {
    let server = ScriptedMackerel::start(vec![
        Answer::raw(301, "").header("location", "https://proxy.example/login")
    ])
    .await;
    let (consumer, dlq) = http_consumer(&server, &[]).await;
    let messages = results(&["m1"], "svc");

    consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    let details = dlq.details();
    assert!(
        details[0].contains("https://proxy.example/login")
            && details[0].contains("MACKEREL_API_BASE"),
        "{details:?}"
    );
}

#[tokio::test]
async fn a_2xx_that_is_not_mackerels_answer_is_retried_then_returned_never_parked() {
    let server = ScriptedMackerel::start(vec![
        Answer::raw(200, "<html>maintenance</html>"),
        Answer::raw(202, ""),
        Answer::raw(200, r#"{"success":false}"#),
        Answer::raw(204, ""),
    ])
    .await;
    let (consumer, dlq) = http_consumer(&server, &[("MACKEREL_MAX_ATTEMPTS", "4")]).await;
    let messages = results(&["m1"], "svc");

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 4);
    assert_eq!(report.fates, vec![Fate::Failed]);
    assert_eq!(report.summary.values_posted, 0);
    assert!(dlq.parked().is_empty());
}

#[tokio::test]
async fn the_success_answer_after_a_proxy_page_counts_as_posted() {
    let server = ScriptedMackerel::start(vec![Answer::raw(200, "<html>proxy</html>")]).await;
    let (consumer, _) = http_consumer(&server, &[]).await;
    let messages = results(&["m1"], "svc");

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(server.seen().len(), 2);
    assert_eq!(report.fates, vec![Fate::Posted]);
}

#[tokio::test]
async fn an_absurd_retry_after_neither_panics_nor_outlives_the_deadline() {
    for retry_after in [
        "18446744073709551615",
        "99999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "-1",
        "soon",
    ] {
        let server =
            ScriptedMackerel::start(vec![Answer::status(429).retry_after(retry_after); 5]).await;
        let (consumer, dlq) = http_consumer(&server, &[("MACKEREL_MAX_ATTEMPTS", "3")]).await;
        let messages = results(&["m1"], "svc");
        let started = tokio::time::Instant::now();

        let report = tokio::time::timeout(
            Duration::from_secs(10),
            consumer.handle(&messages, deadline_in(Duration::from_secs(3))),
        )
        .await
        .unwrap_or_else(|_| panic!("Retry-After {retry_after:?} held the batch past its deadline"));

        assert!(started.elapsed() <= Duration::from_secs(3), "{retry_after}");
        assert!(dlq.parked().is_empty(), "{retry_after}");
        assert!(
            matches!(report.fates[..], [Fate::Failed] | [Fate::Posted]),
            "{retry_after}: {:?}",
            report.fates
        );
    }
}

#[tokio::test]
async fn the_standins_largest_retry_after_is_survived_too() {
    let standin = faulty_standin(mackerel_standin::FaultConfig {
        too_many_requests_fraction: 1.0,
        retry_after_fraction: 1.0,
        retry_after_seconds: u64::MAX,
        ..mackerel_standin::FaultConfig::default()
    })
    .await;
    let settings = settings(&standin.base_url(), &[]);
    let consumer = consumer_with(settings, MemoryDeadLetters::default()).await;
    let messages = results(&["m1", "m2"], "svc");

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(2)))
        .await;

    assert_eq!(report.fates, vec![Fate::Failed, Fate::Failed]);
    standin.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_refused_value_does_not_park_its_neighbours() {
    let server = ScriptedMackerel::start_with_rule(Arc::new(|body: &str| {
        body.contains("job.05.seconds").then(|| Answer::status(400))
    }))
    .await;
    let (consumer, dlq) = http_consumer(&server, &[]).await;
    let names: Vec<String> = (0..16).map(|i| format!("m{i}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    let messages = results(&ids, "svc");

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    for (i, fate) in report.fates.iter().enumerate() {
        let want = if i == 5 {
            Fate::Parked(SetAsideReason::MackerelRejected)
        } else {
            Fate::Posted
        };
        assert_eq!(*fate, want, "m{i}");
    }
    assert_eq!(dlq.parked().len(), 1);
    assert!(
        server.seen().len() <= 1 + 2 * 4,
        "halving 16 values finds the refused one in a few requests, not {}",
        server.seen().len()
    );
}

#[tokio::test]
async fn messages_that_share_a_merged_point_are_refused_together_and_no_one_else() {
    let server = ScriptedMackerel::start_with_rule(Arc::new(|body: &str| {
        body.contains("\"value\":7.0").then(|| Answer::status(422))
    }))
    .await;
    let (consumer, dlq) = http_consumer(&server, &[]).await;
    let time = now() - 60;
    let messages = vec![
        inbound("a", &result_body("svc", "shared.failed", 7.0, time)),
        inbound("b", &result_body("svc", "shared.failed", 0.0, time)),
        inbound("c", &result_body("svc", "other.failed", 0.0, time)),
    ];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(
        report.fates,
        vec![
            Fate::Parked(SetAsideReason::MackerelRejected),
            Fate::Parked(SetAsideReason::MackerelRejected),
            Fate::Posted
        ]
    );
    assert_eq!(dlq.parked().len(), 2);
}

#[tokio::test]
async fn a_value_too_large_for_any_request_is_set_aside_before_any_post() {
    let server = ScriptedMackerel::start(vec![]).await;
    let (consumer, dlq) = http_consumer(&server, &[("MAX_REQUEST_BYTES", "1024")]).await;
    let long_name = format!("job.{}.failed", "x".repeat(1_000));
    let messages = vec![
        inbound("huge", &result_body("svc", &long_name, 1.0, now() - 60)),
        inbound(
            "fine",
            &result_body("svc", "job.ok.failed", 0.0, now() - 60),
        ),
    ];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(
        report.fates,
        vec![Fate::Parked(SetAsideReason::ValueTooLarge), Fate::Posted]
    );
    assert!(server
        .seen()
        .iter()
        .all(|request| !request.body.to_string().contains(&long_name)));
    assert!(dlq.details()[0].contains("MAX_REQUEST_BYTES"));
}

#[tokio::test]
async fn a_request_stored_and_then_cut_off_is_posted_again_harmlessly() {
    // Half the posts are stored and cut off; the seed fixes which, so this run's
    // first try is cut off and a later one is answered.
    let standin = faulty_standin(mackerel_standin::FaultConfig {
        drop_after_store_fraction: 0.5,
        seed: Some(CUT_OFF_FIRST_SEED),
        ..mackerel_standin::FaultConfig::default()
    })
    .await;
    let settings = settings(&standin.base_url(), &[("MACKEREL_MAX_ATTEMPTS", "10")]);
    let consumer = consumer_with(settings, MemoryDeadLetters::default()).await;
    let time = now() - 60;
    let messages = vec![
        inbound("fail", &result_body("svc", "job.failed", 1.0, time)),
        inbound("ok", &result_body("svc", "job.failed", 0.0, time)),
    ];

    let report = consumer
        .handle(&messages, deadline_in(Duration::from_secs(10)))
        .await;

    assert_eq!(report.fates, vec![Fate::Posted, Fate::Posted]);
    assert!(
        standin.counters().tsdb_requests_total >= 2,
        "the seed must cut the first try off: {:?}",
        standin.counters()
    );
    let points = standin.dump().points("svc", "job.failed");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].value, 1.0, "the same merged value, stored twice");
    standin.shutdown().await.unwrap();
}
