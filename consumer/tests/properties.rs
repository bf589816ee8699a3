//! Properties that must hold for every input, checked on generated ones:
//! decoding never panics and always says why it refused, and a batch, whatever
//! Mackerel and the DLQ answer, ends with every message in exactly one place
//! (posted, parked in the DLQ, or returned to the queue) and nothing lost.
//!
//! Time is paused (a current-thread runtime with `start_paused`), so retries,
//! timeouts and `Retry-After` waits cost no wall time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sfn_mackerel_consumer::alerting::StatusPoint;
use sfn_mackerel_consumer::api_key::{ApiKey, FixedKey, KeyStore};
use sfn_mackerel_consumer::config::Settings;
use sfn_mackerel_consumer::delivery::{SeriesRange, Transport};
use sfn_mackerel_consumer::retry::{Answer as MackerelAnswer, AttemptResult};
use sfn_mackerel_consumer::{BatchReport, Consumer, Fate, InboundMessage};
use sfn_mackerel_message::names::{check_metric_name, check_service_name};
use sfn_mackerel_message::status::{alert_series_of, ALERT_SUFFIX};
use sfn_mackerel_message::{
    decode, DecodeContext, OutgoingMessage, OutgoingMetric, SetAsideReason, TimeWindow,
};
use sfn_mackerel_testkit::doubles::{MemoryDeadLetters, ScriptedTransport, SeenTry};

/// 2026-11-29T19:43:43Z: "now" for every generated batch.
const NOW: i64 = 1_795_981_423;
/// When SQS received every generated message: the time of values that carry none.
const SENT_AT: i64 = NOW - 5;
const SERVICES: [&str; 3] = ["team-a", "team-b", "team-c"];
const METRIC_NAMES: [&str; 3] = ["job.load.failed", "job.load.seconds", "job.score.failed"];

/// `cases` random cases; a failure prints its shrunk input rather than writing
/// a regressions file next to the tests.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn window() -> TimeWindow {
    TimeWindow::around(NOW, 600)
}

// ---------------------------------------------------------------------------
// Decoding arbitrary input
// ---------------------------------------------------------------------------

/// Strings that hit the decoder's interesting branches more often than chance.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("team-a".to_owned()),
        Just("job.load.failed".to_owned()),
        Just("2026-11-29T19:43:43.229Z".to_owned()),
        Just("2026-11-29T19:43:43.229000+00:00".to_owned()),
        Just("1970-01-01T00:00:00Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        "[a-zA-Z0-9._-]{0,70}",
        ".{0,12}",
    ]
}

/// Numbers at the edges: zero, huge, negative, fractional, epoch-like.
fn interesting_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        (NOW - 200_000..NOW + 200_000).prop_map(Value::from),
        Just(Value::from(NOW * 1000)),
        Just(Value::from(1e15)),
        Just(Value::from(1.5)),
    ]
}

/// Any JSON value, nested a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        interesting_number(),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(object_key(), inner, 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Mostly the keys the decoder looks at, sometimes anything.
fn object_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "service", "name", "value", "time", "metrics", "version",
            "service-name", "metric-name", "metric-value",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

/// An object with the message's fields, each of an arbitrary type; `metrics`,
/// when present, is usually an array of objects with arbitrary-typed fields.
fn message_like_object() -> impl Strategy<Value = Value> {
    let metric = prop::collection::btree_map(
        prop::sample::select(vec!["name", "value", "time"]).prop_map(str::to_owned),
        json_value(),
        0..4,
    )
    .prop_map(|entries| Value::Object(entries.into_iter().collect()));
    let metrics = prop_oneof![
        3 => prop::collection::vec(metric, 0..4).prop_map(Value::Array),
        1 => json_value(),
    ];
    (
        prop::collection::btree_map(object_key(), json_value(), 0..6),
        prop::option::of(metrics),
    )
        .prop_map(|(entries, metrics)| {
            let mut object: Map<String, Value> = entries.into_iter().collect();
            if let Some(metrics) = metrics {
                object.insert("metrics".to_owned(), metrics);
            }
            Value::Object(object)
        })
}

/// A well-formed message with a raw number literal (out of f64 range, huge
/// integers, negative zero) where a value or a time goes.
fn message_with_raw_number() -> impl Strategy<Value = String> {
    let literal = prop_oneof![
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-0".to_owned()),
        Just("1.7976931348623157e308".to_owned()),
        "-?[0-9]{1,30}(\\.[0-9]{1,5})?(e-?[0-9]{1,4})?",
    ];
    (literal, any::<bool>()).prop_map(|(literal, in_time)| {
        if in_time {
            format!(r#"{{"service":"team-a","name":"job.load.failed","value":1,"time":{literal}}}"#)
        } else {
            format!(r#"{{"service":"team-a","name":"job.load.failed","value":{literal}}}"#)
        }
    })
}

/// Decodes `body` and checks the contract that holds for any input: a
/// rejection says why; an accepted message is one Mackerel would keep.
fn decode_keeps_its_contract(body: &str, sent_at: Option<i64>) -> Result<(), TestCaseError> {
    let context = DecodeContext {
        sent_at,
        window: window(),
    };
    match decode(body, &context) {
        Err(rejection) => prop_assert!(
            !rejection.detail.trim().is_empty(),
            "rejection {:?} of {body:?} has no detail",
            rejection.reason
        ),
        Ok(decoded) => {
            prop_assert!(!decoded.values.is_empty(), "{body:?} decoded to no values");
            prop_assert!(check_service_name(&decoded.service).is_ok(), "{body:?}");
            for value in &decoded.values {
                prop_assert!(check_metric_name(&value.name).is_ok(), "{body:?}");
                prop_assert!(value.value.is_finite(), "{body:?}");
                prop_assert!(
                    (context.window.oldest..=context.window.newest).contains(&value.time),
                    "{body:?} was accepted with time {} outside the window",
                    value.time
                );
            }
        }
    }
    Ok(())
}

/// serde_json parses floats with a fast algorithm that may land one unit in the
/// last place away from the number that was written, unless its
/// `float_roundtrip` feature is on (it is not in this workspace). A value such
/// as -226107981191.34586 comes back as -226107981191.34583. Harmless for
/// metrics, but it is why values are compared this way and not with `==`.
fn same_within_an_ulp(a: f64, b: f64) -> bool {
    a == b || a.next_up() == b || a.next_down() == b
}

fn sent_at() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![Just(SENT_AT), any::<i64>()])
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200), sent_at in sent_at()) {
        decode_keeps_its_contract(&String::from_utf8_lossy(&bytes), sent_at)?;
    }

    #[test]
    fn arbitrary_json_never_panics_the_decoder(value in json_value(), sent_at in sent_at()) {
        decode_keeps_its_contract(&value.to_string(), sent_at)?;
    }

    #[test]
    fn message_fields_of_any_type_never_panic_the_decoder(object in message_like_object(), sent_at in sent_at()) {
        decode_keeps_its_contract(&object.to_string(), sent_at)?;
    }

    #[test]
    fn raw_number_literals_never_panic_the_decoder(body in message_with_raw_number(), sent_at in sent_at()) {
        decode_keeps_its_contract(&body, sent_at)?;
    }

    #[test]
    fn what_the_encoder_builds_decodes_to_the_same_values(
        service in prop::sample::select(SERVICES.to_vec()),
        metrics in prop::collection::vec(
            (prop::sample::select(METRIC_NAMES.to_vec()), -1e12f64..1e12, 0i64..3_600), 1..5),
    ) {
        let message = OutgoingMessage {
            service: service.to_owned(),
            time: None,
            metrics: metrics
                .iter()
                .map(|(name, value, age)| OutgoingMetric {
                    name: (*name).to_owned(),
                    value: *value,
                    time: Some(sfn_mackerel_message::timestamp::format_epoch(NOW - age)),
                })
                .collect(),
        };
        let context = DecodeContext { sent_at: Some(SENT_AT), window: window() };
        let decoded = decode(&message.to_body(), &context).map_err(|r| TestCaseError::fail(r.to_string()))?;
        prop_assert_eq!(decoded.service, service);
        prop_assert_eq!(decoded.values.len(), metrics.len());
        for (got, (name, value, age)) in decoded.values.iter().zip(&metrics) {
            prop_assert_eq!(&got.name, name);
            prop_assert_eq!(got.time, NOW - age);
            prop_assert!(same_within_an_ulp(got.value, *value), "sent {value}, decoded {}", got.value);
        }
    }
}

// ---------------------------------------------------------------------------
// A batch against arbitrary Mackerel answers and a DLQ that may refuse
// ---------------------------------------------------------------------------

/// One value of a valid generated message.
#[derive(Debug, Clone)]
struct ValueSpec {
    name: &'static str,
    value: f64,
    /// Seconds before `NOW`; `None` leaves `time` out of the body.
    age: Option<i64>,
}

/// A value as the decoder must read it: (metric name, epoch seconds, value).
type ExpectedValue = (&'static str, i64, f64);

/// A generated message, with what the decoder must make of it.
#[derive(Debug, Clone)]
enum MessageSpec {
    /// `{"service", "name", "value", "time"?}`
    Single {
        service: &'static str,
        value: ValueSpec,
    },
    /// `{"service", "time"?, "metrics": [...]}`
    Multi {
        service: &'static str,
        message_age: Option<i64>,
        values: Vec<ValueSpec>,
    },
    /// Valid in form but two days old: set aside as `too_old`.
    TooOld { service: &'static str },
    /// Anything the decoder must refuse.
    Malformed(String),
}

impl MessageSpec {
    fn body(&self) -> String {
        fn time(age: Option<i64>) -> Value {
            age.map_or(Value::Null, |age| Value::from(NOW - age))
        }
        fn without_nulls(mut value: Value) -> Value {
            if let Value::Object(object) = &mut value {
                object.retain(|_, v| !v.is_null());
                if let Some(Value::Array(items)) = object.get_mut("metrics") {
                    for item in items {
                        *item = without_nulls(item.take());
                    }
                }
            }
            value
        }
        let body = match self {
            Self::Single { service, value } => json!({
                "service": service, "name": value.name, "value": value.value, "time": time(value.age),
            }),
            Self::Multi {
                service,
                message_age,
                values,
            } => json!({
                "service": service,
                "time": time(*message_age),
                "metrics": values.iter().map(|v| json!({"name": v.name, "value": v.value, "time": time(v.age)})).collect::<Vec<_>>(),
            }),
            Self::TooOld { service } => json!({
                "service": service, "name": METRIC_NAMES[0], "value": 1, "time": NOW - 2 * 86_400,
            }),
            Self::Malformed(body) => return body.clone(),
        };
        without_nulls(body).to_string()
    }

    /// The service and the values a valid message carries.
    fn expected_values(&self) -> Option<(&'static str, Vec<ExpectedValue>)> {
        match self {
            Self::Single { service, value } => Some((
                service,
                vec![(
                    value.name,
                    NOW - value.age.unwrap_or(NOW - SENT_AT),
                    value.value,
                )],
            )),
            Self::Multi {
                service,
                message_age,
                values,
            } => Some((
                service,
                values
                    .iter()
                    .map(|v| {
                        let age = v.age.or(*message_age).unwrap_or(NOW - SENT_AT);
                        (v.name, NOW - age, v.value)
                    })
                    .collect(),
            )),
            Self::TooOld { .. } | Self::Malformed(_) => None,
        }
    }
}

fn value_spec() -> impl Strategy<Value = ValueSpec> {
    (
        prop::sample::select(METRIC_NAMES.to_vec()),
        prop_oneof![(0..3i32).prop_map(f64::from), -1e6f64..1e6],
        // Fifteen minutes, so values of different messages share a minute and merge.
        prop::option::weighted(0.8, 0i64..900),
    )
        .prop_map(|(name, value, age)| ValueSpec { name, value, age })
}

fn message_spec() -> impl Strategy<Value = MessageSpec> {
    let service = || prop::sample::select(SERVICES.to_vec());
    let malformed = prop_oneof![
        Just(r#"{"service": "broken"#.to_owned()),
        Just(String::new()),
        Just("[1, 2]".to_owned()),
        Just(r#"{"service": "team-a", "value": 1}"#.to_owned()),
        Just(r#"{"service": "team-a", "name": "job load", "value": 1}"#.to_owned()),
        Just(r#"{"service": "x", "name": "job.load.failed", "value": 1}"#.to_owned()),
        Just(r#"{"version": 2, "service": "team-a", "name": "n", "value": 1}"#.to_owned()),
        Just(r#"{"service": "team-a", "name": "n", "value": 1e400}"#.to_owned()),
        ".{0,20}",
    ];
    prop_oneof![
        4 => (service(), value_spec()).prop_map(|(service, value)| MessageSpec::Single { service, value }),
        4 => (service(), prop::option::of(0i64..900), prop::collection::vec(value_spec(), 1..4))
            .prop_map(|(service, message_age, values)| MessageSpec::Multi { service, message_age, values }),
        1 => service().prop_map(|service| MessageSpec::TooOld { service }),
        1 => malformed.prop_map(MessageSpec::Malformed),
    ]
}

/// One answer of the fake Mackerel.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Status(u16),
    TooManyRequests {
        retry_after_seconds: u64,
    },
    /// No answer: the request takes the whole timeout.
    Timeout,
    Unreachable,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        12 => Just(Answer::Status(200)),
        1 => Just(Answer::Status(202)),
        3 => prop::sample::select(vec![500u16, 502, 503]).prop_map(Answer::Status),
        2 => (0u64..3).prop_map(|s| Answer::TooManyRequests { retry_after_seconds: s }),
        1 => Just(Answer::Status(400)),
        1 => Just(Answer::Status(404)),
        1 => prop::sample::select(vec![401u16, 403]).prop_map(Answer::Status),
        1 => Just(Answer::Status(408)),
        1 => Just(Answer::Timeout),
        1 => Just(Answer::Unreachable),
    ]
}

/// Per service: the answers to its first requests, in order, then the answer to all later ones.
type AnswerScript = (Vec<Answer>, Answer);

fn answer_script() -> impl Strategy<Value = AnswerScript> {
    (prop::collection::vec(answer(), 0..6), answer())
}

impl Answer {
    /// What the transport hands the consumer for this answer.
    fn attempt(&self) -> AttemptResult {
        let answered = |status, retry_after| {
            AttemptResult::Answered(MackerelAnswer {
                retry_after,
                ..MackerelAnswer::mackerel(status)
            })
        };
        match self {
            Answer::Status(status) => answered(*status, None),
            Answer::TooManyRequests {
                retry_after_seconds,
            } => answered(429, Some(Duration::from_secs(*retry_after_seconds))),
            Answer::Timeout => AttemptResult::TimedOut,
            Answer::Unreachable => AttemptResult::Unreachable("connection refused".to_owned()),
        }
    }
}

/// A Mackerel that answers each service's requests from a generated script.
fn scripted_mackerel(scripts: &[AnswerScript]) -> ScriptedTransport {
    ScriptedTransport::per_service(
        SERVICES
            .iter()
            .zip(scripts)
            .map(|(service, (first, then))| {
                (
                    (*service).to_owned(),
                    first.iter().map(Answer::attempt).collect(),
                    then.attempt(),
                )
            })
            .collect(),
    )
}

/// Whether Mackerel stored what a try carried: only its own success answer says so.
fn stored(answer: &AttemptResult) -> bool {
    matches!(answer, AttemptResult::Answered(a) if a.mackerel_success)
}

/// A generated scenario: the batch, Mackerel's answers per service, which parks
/// the DLQ refuses, and how long the invocation has.
#[derive(Debug, Clone)]
struct Scenario {
    messages: Vec<MessageSpec>,
    scripts: Vec<AnswerScript>,
    refused_positions: HashSet<usize>,
    deadline_ms: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(message_spec(), 1..40),
        prop::collection::vec(answer_script(), SERVICES.len()),
        prop::collection::hash_set(0usize..40, 0..4),
        // Mostly plenty of time; sometimes so little that retries run out of it.
        prop_oneof![3 => Just(60_000u64), 1 => 300u64..3_000],
    )
        .prop_map(
            |(messages, scripts, refused_positions, deadline_ms)| Scenario {
                messages,
                scripts,
                refused_positions,
                deadline_ms,
            },
        )
}

/// Everything one handled batch left behind.
struct Run {
    inbound: Vec<InboundMessage>,
    report: BatchReport,
    requests: Vec<SeenTry>,
    /// (id, reason, body) of each parked message.
    parked: Vec<(String, SetAsideReason, String)>,
    park_attempts: Vec<String>,
}

fn settings() -> Settings {
    let vars: HashMap<String, String> = [
        ("MACKEREL_API_KEY", "k"),
        ("DLQ_URL", "memory://dlq"),
        ("MACKEREL_MAX_ATTEMPTS", "2"),
        ("MACKEREL_TIMEOUT_MS", "1000"),
        ("BACKOFF_BASE_MS", "10"),
        ("BACKOFF_CAP_MS", "50"),
        ("DEADLINE_MARGIN_MS", "100"),
        // Small bodies, so one service's values span several requests.
        ("MAX_REQUEST_BYTES", "1024"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Settings::from_vars(&vars).expect("test settings are valid")
}

/// Handles the scenario's batch on a paused clock.
fn run(scenario: &Scenario) -> Run {
    let inbound: Vec<InboundMessage> = scenario
        .messages
        .iter()
        .enumerate()
        .map(|(position, spec)| InboundMessage {
            id: format!("m-{position}"),
            body: spec.body(),
            sent_at_ms: Some(SENT_AT * 1000),
            first_sent_attribute: None,
            source_queue_arn: None,
        })
        .collect();
    let transport = scripted_mackerel(&scenario.scripts);
    let dlq = MemoryDeadLetters {
        refused_ids: Arc::new(
            scenario
                .refused_positions
                .iter()
                .map(|p| format!("m-{p}"))
                .collect(),
        ),
        ..MemoryDeadLetters::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime builds");
    let report = runtime.block_on(async {
        let keys = KeyStore::load(FixedKey(ApiKey::new("k").unwrap()))
            .await
            .expect("a fixed key loads");
        let consumer = Consumer::new(settings(), transport.clone(), keys, dlq.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(scenario.deadline_ms);
        consumer.handle_at(&inbound, deadline, NOW).await
    });
    let parked = dlq.parked();
    let park_attempts = dlq.attempts();
    Run {
        inbound,
        report,
        requests: transport.seen(),
        parked,
        park_attempts,
    }
}

/// A point of a request body, keyed the way the handler merges values:
/// (service, metric name, minute).
type PointKey = (String, String, i64);

#[derive(serde::Deserialize)]
struct PostedPoint {
    name: String,
    time: i64,
    value: f64,
}

/// What reached Mackerel, by point.
struct Delivery {
    /// The (time, value) of every point in a body that some try got Mackerel's
    /// success answer for.
    delivered: HashMap<PointKey, Vec<(i64, f64)>>,
    /// The points that were posted but never in a body that got a success answer
    /// (a refused body split in halves delivers its points in the halves).
    undelivered: HashSet<PointKey>,
    /// The (service, alert series) whose steps were all written.
    alerts_written: HashSet<(String, String)>,
    /// The (service, alert series) that a stored try set to 1.
    alerts_opened: HashSet<(String, String)>,
}

fn delivery(requests: &[SeenTry]) -> Delivery {
    let mut delivered_bodies: HashSet<(&str, &[u8])> = HashSet::new();
    for request in requests.iter().filter(|r| stored(&r.answer)) {
        delivered_bodies.insert((&request.service, &request.body));
    }
    let mut delivered: HashMap<PointKey, Vec<(i64, f64)>> = HashMap::new();
    let mut undelivered: HashSet<PointKey> = HashSet::new();
    for request in requests {
        let points: Vec<PostedPoint> =
            serde_json::from_slice(&request.body).expect("every request body is a JSON array");
        let was_delivered =
            delivered_bodies.contains(&(request.service.as_str(), &request.body[..]));
        for point in points {
            let key = (
                request.service.clone(),
                point.name.clone(),
                point.time.div_euclid(60),
            );
            if was_delivered {
                delivered
                    .entry(key)
                    .or_default()
                    .push((point.time, point.value));
            } else {
                undelivered.insert(key);
            }
        }
    }
    undelivered.retain(|key| !delivered.contains_key(key));
    // An alert series is written when the last try that carried it was stored:
    // its steps go in order, each after the one before was stored.
    let mut last_alert_try: HashMap<(String, String), bool> = HashMap::new();
    let mut alerts_opened: HashSet<(String, String)> = HashSet::new();
    for request in requests {
        let points: Vec<PostedPoint> =
            serde_json::from_slice(&request.body).expect("every request body is a JSON array");
        for point in points
            .into_iter()
            .filter(|p| p.name.ends_with(ALERT_SUFFIX))
        {
            let key = (request.service.clone(), point.name);
            if stored(&request.answer) && point.value > 0.5 {
                alerts_opened.insert(key.clone());
            }
            last_alert_try.insert(key, stored(&request.answer));
        }
    }
    Delivery {
        delivered,
        undelivered,
        alerts_written: last_alert_try
            .into_iter()
            .filter_map(|(key, written)| written.then_some(key))
            .collect(),
        alerts_opened,
    }
}

/// Whether every value the spec carries reached Mackerel in a 2xx-answered body
/// (merged by `max` with its same-minute neighbours), and none sits in a body
/// that never got a 2xx. Values are compared within one unit in the last place:
/// see [`same_within_an_ulp`].
fn all_values_delivered(spec: &MessageSpec, delivery: &Delivery) -> bool {
    let Some((service, values)) = spec.expected_values() else {
        return false;
    };
    values.iter().all(|(name, time, value)| {
        let key = (service.to_owned(), (*name).to_owned(), time.div_euclid(60));
        !delivery.undelivered.contains(&key)
            && delivery.delivered.get(&key).is_some_and(|points| {
                points.iter().any(|(posted_time, posted_value)| {
                    posted_time >= time && *posted_value >= value.next_down()
                })
            })
    })
}

fn is_decode_reason(reason: SetAsideReason) -> bool {
    !matches!(
        reason,
        SetAsideReason::UnknownService
            | SetAsideReason::MackerelRejected
            | SetAsideReason::MackerelForbidden
    )
}

/// For each batch position: whether the alert of every job status in its unit
/// was written (a unit is delivered or returned whole, its alerts included).
fn alerts_written_by_unit(run: &Run, delivery: &Delivery) -> HashMap<usize, bool> {
    let mut by_unit: HashMap<usize, bool> = HashMap::new();
    let prepared = sfn_mackerel_consumer::handler::prepare(&run.inbound, NOW, &settings());
    for service in prepared.group(&settings()) {
        for unit in &service.units {
            let written = unit.points.iter().all(|point| {
                alert_series_of(point.name).is_none_or(|alert| {
                    delivery
                        .alerts_written
                        .contains(&(service.service.to_owned(), alert))
                })
            });
            for source in &unit.sources {
                by_unit.insert(*source, written);
            }
        }
    }
    by_unit
}

/// The partition property, checked on one run.
fn every_message_ends_in_exactly_one_place(
    scenario: &Scenario,
    run: &Run,
) -> Result<(), TestCaseError> {
    let delivery = delivery(&run.requests);
    let failed_ids: Vec<&str> = run.report.failed_ids(&run.inbound);
    let failed: HashSet<&str> = failed_ids.iter().copied().collect();
    prop_assert_eq!(
        failed.len(),
        failed_ids.len(),
        "a failure was reported twice"
    );
    prop_assert_eq!(run.report.fates.len(), run.inbound.len());

    let mut parked_count: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _, _) in &run.parked {
        *parked_count.entry(id.as_str()).or_default() += 1;
    }
    let mut attempt_count: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &run.park_attempts {
        *attempt_count.entry(id.as_str()).or_default() += 1;
    }

    let alerts_of_units = alerts_written_by_unit(run, &delivery);

    for ((spec, message), fate) in scenario
        .messages
        .iter()
        .zip(&run.inbound)
        .zip(&run.report.fates)
    {
        let id = message.id.as_str();
        prop_assert!(
            attempt_count.get(id).copied().unwrap_or(0) <= 1,
            "{id} was offered to the DLQ more than once"
        );
        // Posted: its values delivered, and the alert of every job status in
        // its unit written (a unit is delivered or returned whole).
        let position: usize = id["m-".len()..].parse().unwrap();
        let posted = all_values_delivered(spec, &delivery)
            && alerts_of_units.get(&position).copied().unwrap_or(true);
        let parked = parked_count.get(id).copied().unwrap_or(0);
        let returned = failed.contains(id);
        prop_assert!(parked <= 1, "{id} was parked {parked} times");
        prop_assert_eq!(
            usize::from(posted) + parked + usize::from(returned),
            1,
            "{} ({:?}) is posted={}, parked={}, returned={}; fate {:?}",
            id,
            spec,
            posted,
            parked,
            returned,
            fate
        );
        match fate {
            Fate::Posted => prop_assert!(posted, "{id} reported Posted, not all values delivered"),
            Fate::Failed => prop_assert!(returned, "{id} is Failed but not reported"),
            Fate::Parked(reason) => {
                let (_, parked_reason, parked_body) =
                    run.parked.iter().find(|p| p.0 == id).ok_or_else(|| {
                        TestCaseError::fail(format!("{id} reported Parked, not in the DLQ"))
                    })?;
                prop_assert_eq!(*parked_reason, *reason);
                prop_assert_eq!(parked_body, &message.body, "the DLQ got a changed body");
                let valid = spec.expected_values().is_some();
                prop_assert_eq!(
                    !is_decode_reason(*reason),
                    valid,
                    "{} ({:?}) was parked as {}",
                    id,
                    spec,
                    reason
                );
            }
        }
        if matches!(spec, MessageSpec::TooOld { .. }) && parked == 1 {
            prop_assert_eq!(*fate, Fate::Parked(SetAsideReason::TooOld));
        }
    }

    let summary = &run.report.summary;
    prop_assert_eq!(
        summary.posted_messages + summary.parked_messages + summary.failed_messages,
        run.inbound.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_message_is_posted_parked_or_returned_exactly_once(scenario in scenario()) {
        let run = run(&scenario);
        every_message_ends_in_exactly_one_place(&scenario, &run)?;
    }

    #[test]
    fn a_message_reported_posted_never_had_a_value_in_a_failed_request(scenario in scenario()) {
        let run = run(&scenario);
        let delivery = delivery(&run.requests);
        for ((spec, message), fate) in scenario.messages.iter().zip(&run.inbound).zip(&run.report.fates) {
            if *fate != Fate::Posted {
                continue;
            }
            let (service, values) = spec
                .expected_values()
                .ok_or_else(|| TestCaseError::fail(format!("invalid {} reported Posted", message.id)))?;
            for (name, time, value) in values {
                let key = (service.to_owned(), name.to_owned(), time.div_euclid(60));
                prop_assert!(
                    !delivery.undelivered.contains(&key),
                    "{} is Posted but its {} at {} was in a request that never got a 2xx",
                    message.id, name, time
                );
                if let Some(alert) = alert_series_of(name).filter(|_| value > 0.5) {
                    prop_assert!(
                        delivery.alerts_opened.contains(&(service.to_owned(), alert.clone())),
                        "{} is Posted with a failure, but no stored try set {} to 1",
                        message.id, alert
                    );
                }
            }
        }
    }

    #[test]
    fn a_batch_that_mackerel_and_the_dlq_accept_returns_nothing(
        messages in prop::collection::vec(message_spec(), 1..40),
    ) {
        let scenario = Scenario {
            messages,
            scripts: vec![(Vec::new(), Answer::Status(200)); SERVICES.len()],
            refused_positions: HashSet::new(),
            deadline_ms: 60_000,
        };
        let run = run(&scenario);
        prop_assert!(run.report.failed_ids(&run.inbound).is_empty());
        for (spec, fate) in scenario.messages.iter().zip(&run.report.fates) {
            let want_posted = spec.expected_values().is_some();
            prop_assert_eq!(*fate == Fate::Posted, want_posted, "{:?} ended {:?}", spec, fate);
        }
    }
}

// ---------------------------------------------------------------------------
// Messages that merge travel together
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Within a batch, no message comes back for redelivery while one of its
    /// values, or a merged point it contributed to, was delivered: its
    /// redelivery would post its own value over the merged one. The one
    /// exception is a unit of messages that alone exceeds a request.
    #[test]
    fn no_returned_message_had_a_value_or_a_merged_point_delivered(scenario in scenario()) {
        let run = run(&scenario);
        let delivery = delivery(&run.requests);
        let prepared = sfn_mackerel_consumer::handler::prepare(&run.inbound, NOW, &settings());
        let plans = prepared.plan(&settings());
        let alerts_of_units = alerts_written_by_unit(&run, &delivery);
        let mut split: HashSet<usize> = HashSet::new();
        for plan in &plans {
            let whole: HashSet<usize> = plan.chunks.iter().flat_map(|c| c.units.iter().copied()).collect();
            for (index, unit) in plan.points.units.iter().enumerate() {
                // A unit whose values were delivered but whose job's alert was
                // not written comes back whole (none of it is deleted as
                // posted), so its redelivery writes the same merge again.
                let alert_not_written = unit
                    .sources
                    .first()
                    .is_some_and(|source| !alerts_of_units.get(source).copied().unwrap_or(true));
                if !whole.contains(&index) || alert_not_written {
                    split.extend(unit.sources.iter().copied());
                }
            }
        }
        for ((spec, message), fate) in scenario.messages.iter().zip(&run.inbound).zip(&run.report.fates) {
            let position: usize = message.id["m-".len()..].parse().unwrap();
            if *fate != Fate::Failed || split.contains(&position) {
                continue;
            }
            let Some((service, values)) = spec.expected_values() else { continue };
            for (name, time, _) in values {
                let key = (service.to_owned(), name.to_owned(), time.div_euclid(60));
                prop_assert!(
                    !delivery.delivered.contains_key(&key),
                    "{} comes back, but its point {} at minute {} was delivered",
                    message.id, name, time.div_euclid(60)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Whatever a server answers
// ---------------------------------------------------------------------------

/// `Retry-After` values a server could send, absurd ones included.
fn retry_after_header() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        1 => any::<u64>().prop_map(|n| Some(n.to_string().into_bytes())),
        1 => Just(Some(b"18446744073709551615".to_vec())),
        1 => Just(Some(b"340282366920938463463374607431768211456".to_vec())),
        1 => any::<i64>().prop_map(|n| Some((-(n.abs().max(1))).to_string().into_bytes())),
        1 => Just(Some(b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec())),
        1 => Just(Some(b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec())),
        1 => Just(Some(b"Sun, 06 Nov 1994 08:49:37 GMT".to_vec())),
        1 => "[ -~]{0,40}".prop_map(|s| Some(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

/// Bodies a server could send: Mackerel's, near-misses, and noise.
fn answer_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"success":true}"#.to_vec()),
        Just(br#"{"success":false}"#.to_vec()),
        Just(br#"{"success":"true"}"#.to_vec()),
        Just(br#"{"error":{"message":"nope"}}"#.to_vec()),
        Just(b"<html>proxy</html>".to_vec()),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// Plays one answer to every try.
struct SameAnswer(AttemptResult);

impl Transport for SameAnswer {
    async fn post_tsdb(&self, _: &str, _: &[u8], _: &ApiKey, _: Duration) -> AttemptResult {
        self.0.clone()
    }
    async fn read_series(
        &self,
        _: &str,
        _: &str,
        _: SeriesRange,
        _: &ApiKey,
        _: Duration,
    ) -> Result<Vec<StatusPoint>, String> {
        Ok(Vec::new())
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Any status, header and body bytes: reading the answer, classifying it and
    /// retrying on it never panic, never wait past the deadline, and count
    /// nothing as delivered but Mackerel's own success answer.
    #[test]
    fn arbitrary_answers_never_panic_nor_outlive_the_deadline(
        status in prop_oneof![any::<u16>(), 100u16..600],
        retry_after in retry_after_header(),
        location in prop::option::of(prop::collection::vec(any::<u8>(), 0..60)),
        body in answer_body(),
    ) {
        use reqwest::header::{HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
        let mut headers = HeaderMap::new();
        for (name, value) in [(RETRY_AFTER, retry_after), (LOCATION, location)] {
            if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
                headers.insert(name, value);
            }
        }
        let result = sfn_mackerel_consumer::mackerel::read_answer(
            status, &headers, &body, std::time::SystemTime::now());
        let verdict = sfn_mackerel_consumer::retry::classify(&result);
        let is_mackerels_success = (200..300).contains(&status)
            && sfn_mackerel_consumer::mackerel::is_mackerel_success(&String::from_utf8_lossy(&body));
        prop_assert_eq!(
            verdict == sfn_mackerel_consumer::retry::Verdict::Delivered,
            is_mackerels_success
        );

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime builds");
        let (outcome, elapsed) = runtime.block_on(async {
            let keys = KeyStore::load(FixedKey(ApiKey::new("k").unwrap())).await.unwrap();
            let started = tokio::time::Instant::now();
            let policy = sfn_mackerel_consumer::delivery::RetryPolicy {
                max_attempts: 5,
                request_timeout: Duration::from_secs(2),
                backoff_base: Duration::from_millis(100),
                backoff_cap: Duration::from_secs(2),
                give_up_at: started + Duration::from_secs(5),
                jitter: || 0.5,
            };
            let (outcome, _) = sfn_mackerel_consumer::delivery::deliver(
                &SameAnswer(result), &keys, 1, "svc", b"[]", &policy).await;
            (outcome, started.elapsed())
        });
        prop_assert!(elapsed <= Duration::from_secs(5), "waited {elapsed:?}");
        prop_assert_eq!(
            outcome == sfn_mackerel_consumer::delivery::ChunkOutcome::Delivered,
            is_mackerels_success
        );
    }
}
