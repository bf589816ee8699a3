//! Job results from AWS's own EventBridge events, with no workflow edited: a Glue
//! Job State Change becomes `<glue prefix>.<job>.failed`, a Step Functions
//! Execution Status Change `<workflow prefix>.<state machine>.failed` and
//! `.seconds`. Pure: what the event says and how the deployment maps it in, the
//! values out, or the reason it is set aside. The shapes are AWS's: the Glue
//! events in the EventBridge user guide ("Amazon Glue events"), the Step
//! Functions ones in its developer guide ("EventBridge events").

use serde_json::Value;

use crate::decode::{Decoded, MetricValue};
use crate::reason::{Rejection, SetAsideReason};
use crate::timestamp::{format_epoch, parse_rfc3339};

pub const GLUE_SOURCE: &str = "aws.glue";
pub const GLUE_DETAIL_TYPE: &str = "Glue Job State Change";
pub const WORKFLOW_SOURCE: &str = "aws.states";
pub const WORKFLOW_DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// The Glue job states that end a run, with what each reports. AWS documents
/// the first four for Glue Job State Change; `ERROR` is the other failed end
/// of a run in Glue's `JobRunState`, so it reports a failure rather than
/// being set aside.
pub const GLUE_STATES: [&str; 5] = ["SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED"];
/// The execution statuses that end an execution (`RUNNING` posts nothing).
pub const WORKFLOW_END_STATUSES: [&str; 4] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

/// What a Glue run that was STOPPED reports. Default [`StoppedAs::Failed`]: a
/// stopped run did not do its work. Step Functions stops a job's run when its
/// execution is aborted or times out, and a run stopped by hand did not deliver
/// its data either; a team that stops runs on purpose says `succeeded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedAs {
    Failed,
    Succeeded,
}

impl StoppedAs {
    /// As `EVENT_STOPPED_AS` takes it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "failed" => Some(Self::Failed),
            "succeeded" => Some(Self::Succeeded),
            _ => None,
        }
    }
}

/// Which service a job's or state machine's values go to: the first entry
/// whose pattern matches its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRoute {
    /// `*` matches any run of characters (none included); the rest itself.
    pub names: String,
    pub service: String,
}

/// How a deployment maps events in.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMapping {
    /// e.g. `prd.glue.job`: the prefix the example workflow's messages use, so
    /// both paths write the same series.
    pub glue_prefix: String,
    /// e.g. `prd.sfn.workflow`: its own, so a job and a state machine of the
    /// same name never share a series.
    pub workflow_prefix: String,
    /// Empty: no event is covered (the consumer was not told where they go).
    pub services: Vec<ServiceRoute>,
    pub stopped_as: StoppedAs,
}

pub const DEFAULT_GLUE_PREFIX: &str = "glue.job";
pub const DEFAULT_WORKFLOW_PREFIX: &str = "sfn.workflow";

impl Default for EventMapping {
    fn default() -> Self {
        Self {
            glue_prefix: DEFAULT_GLUE_PREFIX.to_owned(),
            workflow_prefix: DEFAULT_WORKFLOW_PREFIX.to_owned(),
            services: Vec::new(),
            stopped_as: StoppedAs::Failed,
        }
    }
}

/// Whether Glue jobs' and state machines' series could meet under these two
/// prefixes: a series is `<prefix>.<escaped name>.<metric>`, and an escaped
/// name may begin with an escape (`.2f`), so the prefixes are apart only when
/// neither `<prefix>.` begins the other (`x` and `x.y` overlap: job `y/z` and
/// state machine `2fz` would both write `x.y.2fz.failed`).
pub fn prefixes_overlap(glue_prefix: &str, workflow_prefix: &str) -> bool {
    let (glue, workflow) = (format!("{glue_prefix}."), format!("{workflow_prefix}."));
    glue.starts_with(&workflow) || workflow.starts_with(&glue)
}

/// Whether a JSON object is an EventBridge event rather than a job-result
/// message: the envelope's `source`, `detail-type` and `detail`, and no
/// `service` (or the legacy `service-name`). A job-result message may carry
/// any other field, those three included (a workflow that EventBridge started
/// may forward them as context), and stays a job-result message.
pub fn is_event(object: &serde_json::Map<String, Value>) -> bool {
    object.get("detail-type").is_some_and(Value::is_string)
        && object.get("source").is_some_and(Value::is_string)
        && object.contains_key("detail")
        && !object.contains_key("service")
        && !object.contains_key("service-name")
}

/// Maps one EventBridge event to the values it posts (none for a RUNNING
/// execution: the message is done without a request).
pub fn map_event(event: &Value, mapping: &EventMapping) -> Result<Decoded, Rejection> {
    let source = text(event, "source")?;
    let detail_type = text(event, "detail-type")?;
    let event_id = event.get("id").and_then(Value::as_str).map(str::to_owned);
    let detail = event
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| invalid("\"detail\" is missing or not an object"))?;
    match (source.as_str(), detail_type.as_str()) {
        (GLUE_SOURCE, GLUE_DETAIL_TYPE) => {
            let job = text(detail, "jobName")?;
            if job.is_empty() {
                return Err(invalid("\"jobName\" is empty"));
            }
            let state = text(detail, "state")?;
            let failed = match state.as_str() {
                "SUCCEEDED" => 0.0,
                "FAILED" | "TIMEOUT" | "ERROR" => 1.0,
                "STOPPED" => match mapping.stopped_as {
                    StoppedAs::Failed => 1.0,
                    StoppedAs::Succeeded => 0.0,
                },
                _ => return Err(unknown_state("Glue job", &job, &state, &GLUE_STATES)),
            };
            let time = envelope_time(event)?;
            Ok(Decoded {
                service: service_of(&job, "Glue job", mapping)?,
                values: vec![MetricValue {
                    name: format!("{}.{}.failed", mapping.glue_prefix, metric_segment(&job)),
                    value: failed,
                    time,
                }],
                event_id,
            })
        }
        (WORKFLOW_SOURCE, WORKFLOW_DETAIL_TYPE) => {
            let machine = state_machine_name(detail)?;
            let status = text(detail, "status")?;
            let failed = match status.as_str() {
                "RUNNING" => None,
                "SUCCEEDED" => Some(0.0),
                "FAILED" | "TIMED_OUT" | "ABORTED" => Some(1.0),
                _ => {
                    return Err(unknown_state(
                        "state machine",
                        &machine,
                        &status,
                        &WORKFLOW_END_STATUSES,
                    ))
                }
            };
            let service = service_of(&machine, "state machine", mapping)?;
            let Some(failed) = failed else {
                return Ok(Decoded {
                    service,
                    values: Vec::new(),
                    event_id,
                });
            };
            let (start, stop) = (epoch_ms(detail, "startDate")?, epoch_ms(detail, "stopDate")?);
            if stop < start {
                return Err(invalid(format!(
                    "\"stopDate\" {stop} is before \"startDate\" {start}"
                )));
            }
            let prefix = format!("{}.{}", mapping.workflow_prefix, metric_segment(&machine));
            let time = stop.div_euclid(1000);
            Ok(Decoded {
                service,
                values: vec![
                    MetricValue {
                        name: format!("{prefix}.failed"),
                        value: failed,
                        time,
                    },
                    MetricValue {
                        name: format!("{prefix}.seconds"),
                        value: (stop - start) as f64 / 1000.0,
                        time,
                    },
                ],
                event_id,
            })
        }
        _ => Err(Rejection::new(
            SetAsideReason::UnsupportedEvent,
            format!(
                "an EventBridge event with source {source:?} and detail-type {detail_type:?}: the consumer maps only {GLUE_DETAIL_TYPE:?} ({GLUE_SOURCE}) and {WORKFLOW_DETAIL_TYPE:?} ({WORKFLOW_SOURCE}); narrow the rule that sends it to the queue"
            ),
        )),
    }
}

/// What an event is about, read without any deployment's mapping: for the CLI
/// (`dlq peek`, `verify`), which has no consumer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    /// The `detail-type`, e.g. `Glue Job State Change`.
    pub kind: String,
    /// The job's or state machine's name, when the detail has it.
    pub subject: Option<String>,
    /// The state or status, when the detail has it.
    pub state: Option<String>,
    /// When it happened (epoch seconds): an execution's `stopDate`, else the
    /// envelope's `time`.
    pub time: Option<i64>,
}

impl EventFacts {
    /// One line for a report, e.g. `Glue Job State Change: MyJob FAILED at 2017-09-07T06:02:03Z`.
    pub fn summary(&self) -> String {
        let mut line = self.kind.clone();
        if let Some(subject) = &self.subject {
            line.push_str(&format!(": {subject}"));
        }
        if let Some(state) = &self.state {
            line.push_str(&format!(" {state}"));
        }
        if let Some(time) = self.time {
            line.push_str(&format!(" at {}", format_epoch(time)));
        }
        line
    }
}

/// The facts of a body that is an EventBridge event; `None` for anything else.
pub fn facts_of(body: &str) -> Option<EventFacts> {
    let event: Value = serde_json::from_str(body).ok()?;
    if !is_event(event.as_object()?) {
        return None;
    }
    let kind = text(&event, "detail-type").ok()?;
    let detail = event.get("detail");
    let field = |name: &str| detail.and_then(|d| text(d, name).ok());
    let envelope_time = envelope_time(&event).ok();
    let stop_time = detail
        .and_then(|d| d.get("stopDate"))
        .and_then(Value::as_i64)
        .map(|ms| ms.div_euclid(1000));
    Some(EventFacts {
        kind,
        subject: field("jobName").or_else(|| detail.and_then(|d| state_machine_name(d).ok())),
        state: field("state").or_else(|| field("status")),
        time: stop_time.or(envelope_time),
    })
}

/// A job's or state machine's name as one part of a metric name. Mackerel
/// allows `[a-zA-Z0-9._-]`; Glue allows spaces and Unicode. Letters, digits,
/// `_` and `-` stay as they are (so the example's names are unchanged); every
/// other byte of the UTF-8 name, `.` included, becomes `.` and two lower-case
/// hex digits. The escape character is escaped too and every escape has the
/// same length, so two different names never map to the same part.
pub fn metric_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!(".{byte:02x}"));
        }
    }
    out
}

fn text(value: &Value, field: &str) -> Result<String, Rejection> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("\"{field}\" is missing or not a string")))
}

/// When the envelope says the state changed: its `time`, RFC 3339 as AWS writes it.
fn envelope_time(event: &Value) -> Result<i64, Rejection> {
    let time = event
        .get("time")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("\"time\" is missing or not a string"))?;
    parse_rfc3339(time).map_err(|why| invalid(format!("\"time\": {why}")))
}

fn epoch_ms(detail: &Value, field: &str) -> Result<i64, Rejection> {
    detail
        .get(field)
        .and_then(Value::as_i64)
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| invalid(format!("\"{field}\" is missing or not epoch milliseconds")))
}

fn state_machine_name(detail: &Value) -> Result<String, Rejection> {
    let arn = text(detail, "stateMachineArn")?;
    arn.rsplit_once(":stateMachine:")
        .map(|(_, name)| name.to_owned())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "\"stateMachineArn\" {arn:?} names no state machine"
            ))
        })
}

fn invalid(detail: impl Into<String>) -> Rejection {
    Rejection::new(
        SetAsideReason::InvalidEvent,
        format!("EventBridge event: {}", detail.into()),
    )
}

fn unknown_state(what: &str, name: &str, state: &str, known: &[&str]) -> Rejection {
    Rejection::new(
        SetAsideReason::UnknownEventState,
        format!(
            "{what} {name:?} reported {state:?}, which the consumer does not map (it knows {}): narrow the rule's pattern to those, or update the consumer",
            known.join(", ")
        ),
    )
}

fn service_of(name: &str, what: &str, mapping: &EventMapping) -> Result<String, Rejection> {
    if mapping.services.is_empty() {
        return Err(Rejection::new(
            SetAsideReason::EventNotCovered,
            format!("an event of {what} {name:?}, but the consumer maps no events to a service: set EVENT_SERVICE (or EVENT_SERVICES), then redrive"),
        ));
    }
    mapping
        .services
        .iter()
        .find(|route| matches_pattern(&route.names, name))
        .map(|route| route.service.clone())
        .ok_or_else(|| {
            Rejection::new(
                SetAsideReason::EventNotCovered,
                format!("no EVENT_SERVICES entry matches {what} {name:?}: add one (or narrow the rule that sends its events), then redrive"),
            )
        })
}

/// `*` matches any run of characters (none included); everything else itself.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLUE: &str = include_str!("../tests/fixtures/glue-job-state-change.json");
    const SFN: &str = include_str!("../tests/fixtures/sfn-execution-status-change.json");

    fn mapping() -> EventMapping {
        EventMapping {
            glue_prefix: "prd.glue.job".into(),
            workflow_prefix: "prd.sfn.workflow".into(),
            services: vec![route("*", "ORGANIZATION")],
            stopped_as: StoppedAs::Failed,
        }
    }

    fn route(names: &str, service: &str) -> ServiceRoute {
        ServiceRoute {
            names: names.into(),
            service: service.into(),
        }
    }

    fn event(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn with_detail(text: &str, field: &str, value: Value) -> Value {
        let mut event = event(text);
        event["detail"][field] = value;
        event
    }

    fn reason(event: &Value, mapping: &EventMapping) -> SetAsideReason {
        map_event(event, mapping).unwrap_err().reason
    }

    #[test]
    fn awss_glue_sample_is_a_failed_job_at_the_events_time() {
        let mapped = map_event(&event(GLUE), &mapping()).unwrap();
        assert_eq!(mapped.service, "ORGANIZATION");
        assert_eq!(
            mapped.values,
            vec![MetricValue {
                name: "prd.glue.job.MyJob.failed".into(),
                value: 1.0,
                time: 1_504_764_123
            }]
        );
    }

    #[test]
    fn every_glue_state_has_its_value_and_stopped_is_configured() {
        for (state, stopped_as, want) in [
            ("SUCCEEDED", StoppedAs::Failed, 0.0),
            ("FAILED", StoppedAs::Failed, 1.0),
            ("TIMEOUT", StoppedAs::Failed, 1.0),
            ("ERROR", StoppedAs::Failed, 1.0),
            ("STOPPED", StoppedAs::Failed, 1.0),
            ("STOPPED", StoppedAs::Succeeded, 0.0),
        ] {
            let mapped = map_event(
                &with_detail(GLUE, "state", state.into()),
                &EventMapping {
                    stopped_as,
                    ..mapping()
                },
            )
            .unwrap();
            assert_eq!(mapped.values[0].value, want, "{state}");
        }
        for state in GLUE_STATES {
            assert!(map_event(&with_detail(GLUE, "state", state.into()), &mapping()).is_ok());
        }
        let running = map_event(&with_detail(GLUE, "state", "RUNNING".into()), &mapping());
        let rejection = running.unwrap_err();
        assert_eq!(rejection.reason, SetAsideReason::UnknownEventState);
        assert!(rejection.detail.contains("\"RUNNING\""), "{rejection}");
    }

    #[test]
    fn awss_step_functions_sample_is_a_failed_workflow_with_its_duration() {
        let mapped = map_event(&event(SFN), &mapping()).unwrap();
        assert_eq!(
            mapped.values,
            vec![
                MetricValue {
                    name: "prd.sfn.workflow.state-machine.failed".into(),
                    value: 1.0,
                    time: 1_551_225_151
                },
                MetricValue {
                    name: "prd.sfn.workflow.state-machine.seconds".into(),
                    value: 5.034,
                    time: 1_551_225_151
                },
            ]
        );
    }

    #[test]
    fn every_execution_status_has_its_value_and_running_posts_nothing() {
        for (status, want) in [
            ("SUCCEEDED", Some(0.0)),
            ("FAILED", Some(1.0)),
            ("TIMED_OUT", Some(1.0)),
            ("ABORTED", Some(1.0)),
            ("RUNNING", None),
        ] {
            let mut event = with_detail(SFN, "status", status.into());
            if status == "RUNNING" {
                event["detail"]["stopDate"] = Value::Null;
            }
            let mapped = map_event(&event, &mapping()).unwrap();
            assert_eq!(mapped.values.first().map(|v| v.value), want, "{status}");
        }
        assert_eq!(
            reason(
                &with_detail(SFN, "status", "PENDING_REDRIVE".into()),
                &mapping()
            ),
            SetAsideReason::UnknownEventState
        );
    }

    #[test]
    fn other_events_are_unsupported_with_their_source_and_kind() {
        let mut other = event(GLUE);
        other["detail-type"] = "Glue Job Run Status".into();
        let rejection = map_event(&other, &mapping()).unwrap_err();
        assert_eq!(rejection.reason, SetAsideReason::UnsupportedEvent);
        assert!(
            rejection.detail.contains("\"aws.glue\"")
                && rejection.detail.contains("\"Glue Job Run Status\""),
            "{rejection}"
        );
    }

    #[test]
    fn a_job_no_service_pattern_covers_is_set_aside_and_redrivable() {
        let narrow = EventMapping {
            services: vec![route("team-a-*", "team-a"), route("*-daily", "daily")],
            ..mapping()
        };
        let rejection = map_event(&event(GLUE), &narrow).unwrap_err();
        assert_eq!(rejection.reason, SetAsideReason::EventNotCovered);
        assert!(rejection.reason.is_redrivable());
        assert!(rejection.detail.contains("\"MyJob\""), "{rejection}");
        let first_match = with_detail(GLUE, "jobName", "team-a-daily".into());
        assert_eq!(map_event(&first_match, &narrow).unwrap().service, "team-a");
        let second = with_detail(GLUE, "jobName", "orders-daily".into());
        assert_eq!(map_event(&second, &narrow).unwrap().service, "daily");
    }

    #[test]
    fn without_any_service_the_reason_says_which_variable_to_set() {
        let unset = EventMapping::default();
        for sample in [GLUE, SFN] {
            let rejection = map_event(&event(sample), &unset).unwrap_err();
            assert_eq!(rejection.reason, SetAsideReason::EventNotCovered);
            assert!(rejection.detail.contains("EVENT_SERVICE"), "{rejection}");
        }
    }

    #[test]
    fn a_known_kind_with_a_broken_field_is_an_invalid_event() {
        let broken = [
            with_detail(GLUE, "jobName", Value::Null),
            with_detail(GLUE, "state", 3.into()),
            with_detail(GLUE, "jobName", "".into()),
            {
                let mut e = event(GLUE);
                e["time"] = "yesterday".into();
                e
            },
            {
                let mut e = event(GLUE);
                e["detail"] = "text".into();
                e
            },
            with_detail(SFN, "stateMachineArn", "arn:aws:states:x".into()),
            with_detail(SFN, "stopDate", Value::Null),
            with_detail(SFN, "startDate", "1551225146847".into()),
            with_detail(SFN, "startDate", 1_551_225_151_882_i64.into()),
        ];
        for event in broken {
            assert_eq!(
                reason(&event, &mapping()),
                SetAsideReason::InvalidEvent,
                "{event}"
            );
        }
    }

    #[test]
    fn names_mackerel_refuses_are_escaped_and_escaping_is_injective() {
        assert_eq!(metric_segment("make_order-2"), "make_order-2");
        assert_eq!(metric_segment("daily load"), "daily.20load");
        assert_eq!(metric_segment("a.b"), "a.2eb");
        assert_eq!(metric_segment("日"), ".e6.97.a5");
        // "a.2eb" as a job name is escaped too, so it cannot meet "a.b".
        assert_eq!(metric_segment("a.2eb"), "a.2e2eb");
        assert_ne!(metric_segment("a.2eb"), metric_segment("a.b"));
        assert!(crate::names::check_metric_name(&metric_segment("x y/é.")).is_ok());
        let spaced = with_detail(GLUE, "jobName", "daily load".into());
        assert_eq!(
            map_event(&spaced, &mapping()).unwrap().values[0].name,
            "prd.glue.job.daily.20load.failed"
        );
    }

    /// The inverse of [`metric_segment`]: it exists, so no two names share a segment.
    fn name_of_segment(segment: &str) -> Option<String> {
        let mut bytes = Vec::new();
        let mut rest = segment.as_bytes();
        while let Some((&first, tail)) = rest.split_first() {
            if first == b'.' {
                let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &tail[2..];
            } else {
                bytes.push(first);
                rest = tail;
            }
        }
        String::from_utf8(bytes).ok()
    }

    proptest::proptest! {
        #[test]
        fn every_name_is_read_back_from_its_segment_so_no_two_names_share_one(name in "\\PC{0,40}|[a-z._ 2e-]{0,12}") {
            let segment = metric_segment(&name);
            proptest::prop_assert!(crate::names::check_metric_name(&segment).is_ok() || name.is_empty());
            proptest::prop_assert_eq!(name_of_segment(&segment), Some(name));
        }
    }

    #[test]
    fn distinct_names_never_share_a_segment() {
        let names = [
            "a", "a.", "a.2e", "a 2e", "a_", "a-", "a..", ".2e", "日", "a/b", "a.2fb", "",
        ];
        let segments: std::collections::HashSet<String> =
            names.iter().map(|n| metric_segment(n)).collect();
        assert_eq!(segments.len(), names.len());
    }

    #[test]
    fn events_and_messages_are_told_apart() {
        assert!(is_event(event(GLUE).as_object().unwrap()));
        for message in [
            serde_json::json!({"service": "S", "name": "n", "value": 1}),
            // A workflow started by EventBridge forwarding the event as context.
            serde_json::json!({"service": "S", "name": "n", "value": 1,
                "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
            serde_json::json!({"service-name": "S", "metric-name": "n", "metric-value": 1,
                "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        ] {
            assert!(!is_event(message.as_object().unwrap()), "{message}");
        }
    }

    #[test]
    fn the_cli_reads_an_events_kind_and_time_without_a_mapping() {
        let glue = facts_of(GLUE).unwrap();
        assert_eq!(
            glue.summary(),
            "Glue Job State Change: MyJob FAILED at 2017-09-07T06:02:03Z"
        );
        let sfn = facts_of(SFN).unwrap();
        assert_eq!(sfn.subject.as_deref(), Some("state-machine"));
        assert_eq!(sfn.time, Some(1_551_225_151));
        assert_eq!(facts_of(r#"{"service":"S","name":"n","value":1}"#), None);
        assert_eq!(facts_of("not json"), None);
    }

    #[test]
    fn prefixes_overlap_when_one_begins_the_other_at_a_dot() {
        for (glue, workflow) in [("x", "x"), ("x", "x.y"), ("a.b", "a"), ("a.", "a")] {
            assert!(prefixes_overlap(glue, workflow), "{glue} {workflow}");
        }
        for (glue, workflow) in [
            ("glue.job", "sfn.workflow"),
            ("ab", "a"),
            ("prd.glue.job", "prd.sfn.workflow"),
        ] {
            assert!(!prefixes_overlap(glue, workflow), "{glue} {workflow}");
        }
        // The overlap is real: these two names meet.
        let (job, machine) = (metric_segment("y/z"), metric_segment("2fz"));
        assert_eq!(format!("x.{job}"), format!("x.y.{machine}"));
    }

    #[test]
    fn patterns_match_whole_names() {
        assert!(matches_pattern("*", ""));
        assert!(matches_pattern("load-*-daily", "load-x-daily"));
        assert!(!matches_pattern("load-*", "unload-x"));
        assert!(!matches_pattern("a*a", "a"));
        assert!(matches_pattern("a**b", "ab"));
        assert!(matches_pattern("exact", "exact"));
        assert!(!matches_pattern("exact", "exactly"));
    }
}
