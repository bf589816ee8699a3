//! The rules Mackerel applies to what clients send (metric posts, service names,
//! monitor definitions), as pure functions so each rule is tested without a server.

use serde_json::{Map, Value};

/// One `{name, time, value}` element of a `tsdb` post, after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// Metric name, `[a-zA-Z0-9._-]+`.
    pub name: String,
    /// Unix epoch seconds.
    pub time: i64,
    /// A finite number.
    pub value: f64,
}

/// Why a request body was refused; the text is what the client reads in
/// `{"error": {"message": ...}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// Metric names: `[a-zA-Z0-9._-]+` (Mackerel documents no length limit).
pub fn is_valid_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Service names: `A-Za-z0-9_-`, 2 to 63 characters, not starting with `-` or `_`.
pub fn is_valid_service_name(name: &str) -> bool {
    (2..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        && !name.starts_with(['-', '_'])
}

/// Whether a request declares `Content-Type: application/json` (parameters allowed).
pub fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    is_json_content_type(
        headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Whether a `Content-Type` header value announces JSON (parameters such as
/// `charset` are allowed).
pub fn is_json_content_type(value: Option<&str>) -> bool {
    value
        .and_then(|v| v.split(';').next())
        .map(|media| media.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

/// Parses and validates a whole `tsdb` body. Any invalid element rejects the
/// whole request (the strictest plausible reading; Mackerel does not document it).
pub fn parse_tsdb_body(body: &[u8]) -> Result<Vec<MetricValue>, Invalid> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request body is not valid JSON ({e})")))?;
    let Value::Array(elements) = parsed else {
        return Err(invalid(
            "request body must be a JSON array of {\"name\", \"time\", \"value\"} objects",
        ));
    };
    if elements.is_empty() {
        return Err(invalid(
            "request body is an empty array: send at least one {\"name\", \"time\", \"value\"} object",
        ));
    }
    elements
        .iter()
        .enumerate()
        .map(|(index, element)| parse_metric_value(index, element))
        .collect()
}

fn parse_metric_value(index: usize, element: &Value) -> Result<MetricValue, Invalid> {
    let Value::Object(fields) = element else {
        return Err(invalid(format!(
            "element {index} is not an object: each element must be {{\"name\", \"time\", \"value\"}}"
        )));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "time" | "value"))
    {
        return Err(invalid(format!(
            "element {index} has an unknown field {unknown:?}: only \"name\", \"time\" and \"value\" are allowed"
        )));
    }
    let name = match fields.get("name") {
        Some(Value::String(name)) if is_valid_metric_name(name) => name.clone(),
        Some(Value::String(name)) => {
            return Err(invalid(format!(
                "element {index}: metric name {name:?} is invalid: use only letters, digits, '.', '_' and '-'"
            )))
        }
        Some(_) => return Err(invalid(format!("element {index}: \"name\" must be a string"))),
        None => return Err(invalid(format!("element {index}: \"name\" is missing"))),
    };
    let time = parse_epoch_seconds(index, fields)?;
    let value = match fields.get("value") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => v,
            _ => {
                return Err(invalid(format!(
                    "element {index}: \"value\" must be a finite number"
                )))
            }
        },
        Some(_) => {
            return Err(invalid(format!(
                "element {index}: \"value\" must be a JSON number (NaN, Infinity, strings and null are refused)"
            )))
        }
        None => return Err(invalid(format!("element {index}: \"value\" is missing"))),
    };
    Ok(MetricValue { name, time, value })
}

fn parse_epoch_seconds(index: usize, fields: &Map<String, Value>) -> Result<i64, Invalid> {
    match fields.get("time") {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(t) if t > 0 => Ok(t),
            Some(_) => Err(invalid(format!(
                "element {index}: \"time\" must be a positive Unix epoch in seconds"
            ))),
            None => Err(invalid(format!(
                "element {index}: \"time\" must be an integer Unix epoch in seconds (got {n}); \
                 milliseconds and fractions are refused"
            ))),
        },
        Some(_) => Err(invalid(format!(
            "element {index}: \"time\" must be an integer Unix epoch in seconds"
        ))),
        None => Err(invalid(format!("element {index}: \"time\" is missing"))),
    }
}

/// Comparison of a service-metric monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Operator {
    /// Alert when the value is above the threshold.
    #[serde(rename = ">")]
    Greater,
    /// Alert when the value is below the threshold.
    #[serde(rename = "<")]
    Less,
}

/// A validated `POST /api/v0/monitors` body for `type: "service"`.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorDefinition {
    /// Display name.
    pub name: String,
    /// Optional note.
    pub memo: Option<String>,
    /// Service the metric belongs to.
    pub service: String,
    /// Metric name watched.
    pub metric: String,
    /// `>` or `<`.
    pub operator: Operator,
    /// Warning threshold.
    pub warning: Option<f64>,
    /// Critical threshold.
    pub critical: Option<f64>,
    /// Number of latest points averaged, 1 to 10.
    pub duration: u32,
    /// Consecutive breaching evaluations before an alert opens, 1 to 10.
    pub max_check_attempts: u32,
    /// Minutes without data before a warning interruption alert (multiple of 10).
    pub missing_duration_warning: Option<u32>,
    /// Minutes without data before a critical interruption alert (multiple of 10).
    pub missing_duration_critical: Option<u32>,
    /// Accepted and echoed; the stand-in sends no notifications.
    pub notification_interval: Option<u32>,
    /// Accepted and echoed; a muted monitor still opens alerts here (Mackerel's
    /// mute only silences notifications).
    pub is_mute: bool,
}

/// Validates a monitor body. Unknown fields are ignored, as Mackerel's monitor
/// API has many optional fields this stand-in does not model.
pub fn parse_monitor_definition(body: &[u8]) -> Result<MonitorDefinition, Invalid> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request body is not valid JSON ({e})")))?;
    let Value::Object(fields) = parsed else {
        return Err(invalid(
            "request body must be a JSON object describing a monitor",
        ));
    };
    match fields.get("type") {
        Some(Value::String(t)) if t == "service" => {}
        Some(Value::String(t)) => {
            return Err(invalid(format!(
                "monitor type {t:?} is not emulated: this stand-in only supports type \"service\""
            )))
        }
        _ => return Err(invalid("\"type\" is required and must be \"service\"")),
    }
    let name = required_string(&fields, "name")?;
    if name.trim().is_empty() {
        return Err(invalid("\"name\" must not be empty"));
    }
    let service = required_string(&fields, "service")?;
    if !is_valid_service_name(&service) {
        return Err(invalid(format!(
            "\"service\" {service:?} is not a valid service name"
        )));
    }
    let metric = required_string(&fields, "metric")?;
    if !is_valid_metric_name(&metric) {
        return Err(invalid(format!(
            "\"metric\" {metric:?} is not a valid metric name"
        )));
    }
    let operator = match fields.get("operator") {
        Some(Value::String(op)) if op == ">" => Operator::Greater,
        Some(Value::String(op)) if op == "<" => Operator::Less,
        _ => {
            return Err(invalid(
                "\"operator\" is required and must be \">\" or \"<\"",
            ))
        }
    };
    let warning = optional_number(&fields, "warning")?;
    let critical = optional_number(&fields, "critical")?;
    let duration = match optional_integer(&fields, "duration")? {
        Some(d) if (1..=10).contains(&d) => d as u32,
        Some(_) => {
            return Err(invalid(
                "\"duration\" must be between 1 and 10 (points averaged)",
            ))
        }
        None => {
            return Err(invalid(
                "\"duration\" is required (1 to 10 latest points averaged)",
            ))
        }
    };
    let max_check_attempts = match optional_integer(&fields, "maxCheckAttempts")? {
        Some(m) if (1..=10).contains(&m) => m as u32,
        Some(_) => return Err(invalid("\"maxCheckAttempts\" must be between 1 and 10")),
        None => 1,
    };
    let missing_duration_warning = missing_duration(&fields, "missingDurationWarning")?;
    let missing_duration_critical = missing_duration(&fields, "missingDurationCritical")?;
    if warning.is_none()
        && critical.is_none()
        && missing_duration_warning.is_none()
        && missing_duration_critical.is_none()
    {
        return Err(invalid(
            "set at least one of \"warning\", \"critical\", \"missingDurationWarning\" or \"missingDurationCritical\"",
        ));
    }
    let memo = match fields.get("memo") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(invalid("\"memo\" must be a string")),
    };
    let notification_interval = match optional_integer(&fields, "notificationInterval")? {
        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
        Some(_) => {
            return Err(invalid(
                "\"notificationInterval\" must be a non-negative number of minutes",
            ))
        }
        None => None,
    };
    let is_mute = match fields.get("isMute") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("\"isMute\" must be true or false")),
    };
    Ok(MonitorDefinition {
        name,
        memo,
        service,
        metric,
        operator,
        warning,
        critical,
        duration,
        max_check_attempts,
        missing_duration_warning,
        missing_duration_critical,
        notification_interval,
        is_mute,
    })
}

/// A validated `POST /api/v0/services` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDefinition {
    /// Service name.
    pub name: String,
    /// Free text, empty when absent.
    pub memo: String,
}

/// Validates a service-creation body `{"name": ..., "memo": ...}`.
pub fn parse_service_definition(body: &[u8]) -> Result<ServiceDefinition, Invalid> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request body is not valid JSON ({e})")))?;
    let Value::Object(fields) = parsed else {
        return Err(invalid(
            "request body must be a JSON object {\"name\", \"memo\"}",
        ));
    };
    let name = required_string(&fields, "name")?;
    if !is_valid_service_name(&name) {
        return Err(invalid(format!(
            "service name {name:?} is invalid: use 2 to 63 letters, digits, '_' or '-', not starting with '_' or '-'"
        )));
    }
    let memo = match fields.get("memo") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(invalid("\"memo\" must be a string")),
    };
    Ok(ServiceDefinition { name, memo })
}

fn required_string(fields: &Map<String, Value>, key: &str) -> Result<String, Invalid> {
    match fields.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(format!("\"{key}\" must be a string"))),
        None => Err(invalid(format!("\"{key}\" is required"))),
    }
}

fn optional_number(fields: &Map<String, Value>, key: &str) -> Result<Option<f64>, Invalid> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(invalid(format!(
                "\"{key}\" must be a finite number or null"
            ))),
        },
        Some(_) => Err(invalid(format!("\"{key}\" must be a number or null"))),
    }
}

fn optional_integer(fields: &Map<String, Value>, key: &str) -> Result<Option<i64>, Invalid> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{key}\" must be an integer"))),
        Some(_) => Err(invalid(format!("\"{key}\" must be an integer"))),
    }
}

fn missing_duration(fields: &Map<String, Value>, key: &str) -> Result<Option<u32>, Invalid> {
    match optional_integer(fields, key)? {
        None => Ok(None),
        Some(m) if (10..=10080).contains(&m) && m % 10 == 0 => Ok(Some(m as u32)),
        Some(_) => Err(invalid(format!(
            "\"{key}\" must be a multiple of 10 minutes between 10 and 10080"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_error(body: &str) -> String {
        match parse_tsdb_body(body.as_bytes()) {
            Err(Invalid(message)) => message,
            Ok(values) => panic!("expected {body} to be refused, got {values:?}"),
        }
    }

    #[test]
    fn a_well_formed_array_is_parsed_in_order() {
        let values = parse_tsdb_body(
            br#"[{"name":"job.etl.failed","time":1732900000,"value":1},{"name":"a-b_c.d","time":1732900060,"value":0.5}]"#,
        )
        .expect("valid body");
        assert_eq!(
            values,
            vec![
                MetricValue {
                    name: "job.etl.failed".into(),
                    time: 1_732_900_000,
                    value: 1.0
                },
                MetricValue {
                    name: "a-b_c.d".into(),
                    time: 1_732_900_060,
                    value: 0.5
                },
            ]
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_refused() {
        assert!(body_error("name=a").contains("not valid JSON"));
    }

    #[test]
    fn a_single_object_instead_of_an_array_is_refused() {
        assert!(body_error(r#"{"name":"a","time":1732900000,"value":1}"#).contains("JSON array"));
    }

    #[test]
    fn an_empty_array_is_refused() {
        assert!(body_error("[]").contains("empty array"));
    }

    #[test]
    fn a_name_outside_the_allowed_characters_is_refused() {
        assert!(
            body_error(r#"[{"name":"job/etl","time":1732900000,"value":1}]"#).contains("invalid")
        );
        assert!(body_error(r#"[{"name":"","time":1732900000,"value":1}]"#).contains("invalid"));
        assert!(body_error(r#"[{"name":"jöb","time":1732900000,"value":1}]"#).contains("invalid"));
    }

    #[test]
    fn a_fractional_time_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":1732900000.5,"value":1}]"#).contains("integer"));
    }

    #[test]
    fn a_time_written_as_a_float_with_zero_fraction_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":1732900000.0,"value":1}]"#).contains("integer"));
    }

    #[test]
    fn a_time_as_a_string_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":"1732900000","value":1}]"#).contains("integer"));
    }

    #[test]
    fn a_non_positive_time_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":0,"value":1}]"#).contains("positive"));
        assert!(body_error(r#"[{"name":"a","time":-5,"value":1}]"#).contains("positive"));
    }

    #[test]
    fn a_null_value_as_serde_writes_for_nan_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":1732900000,"value":null}]"#).contains("number"));
    }

    #[test]
    fn a_number_too_large_for_a_double_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":1732900000,"value":1e400}]"#).contains("JSON"));
    }

    #[test]
    fn nan_and_infinity_literals_are_refused() {
        assert!(body_error(r#"[{"name":"a","time":1732900000,"value":NaN}]"#).contains("JSON"));
        assert!(
            body_error(r#"[{"name":"a","time":1732900000,"value":Infinity}]"#).contains("JSON")
        );
    }

    #[test]
    fn a_missing_field_is_refused() {
        assert!(body_error(r#"[{"name":"a","time":1732900000}]"#).contains("\"value\" is missing"));
        assert!(body_error(r#"[{"name":"a","value":1}]"#).contains("\"time\" is missing"));
        assert!(body_error(r#"[{"time":1732900000,"value":1}]"#).contains("\"name\" is missing"));
    }

    #[test]
    fn an_unknown_field_is_refused() {
        assert!(
            body_error(r#"[{"name":"a","time":1732900000,"value":1,"host":"x"}]"#)
                .contains("unknown field")
        );
    }

    #[test]
    fn one_bad_element_refuses_the_whole_request() {
        let message = body_error(
            r#"[{"name":"a","time":1732900000,"value":1},{"name":"b","time":1732900000,"value":"1"}]"#,
        );
        assert!(message.starts_with("element 1"), "{message}");
    }

    #[test]
    fn service_names_follow_mackerels_rules() {
        assert!(is_valid_service_name("ORGANIZATION"));
        assert!(is_valid_service_name("my-service_2"));
        assert!(!is_valid_service_name("a"));
        assert!(!is_valid_service_name(&"a".repeat(64)));
        assert!(is_valid_service_name(&"a".repeat(63)));
        assert!(!is_valid_service_name("-svc"));
        assert!(!is_valid_service_name("_svc"));
        assert!(!is_valid_service_name("svc.prod"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json_content_type(Some("application/json")));
        assert!(is_json_content_type(Some(
            "Application/JSON; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(None));
    }

    fn monitor(extra: &str) -> Result<MonitorDefinition, Invalid> {
        let body = format!(
            r#"{{"type":"service","name":"etl failed","service":"ORG","metric":"job.etl.failed","operator":">"{extra}}}"#
        );
        parse_monitor_definition(body.as_bytes())
    }

    #[test]
    fn a_service_monitor_gets_default_check_attempts() {
        let def = monitor(r#","critical":0.5,"duration":1"#).expect("valid monitor");
        assert_eq!(def.max_check_attempts, 1);
        assert_eq!(def.critical, Some(0.5));
        assert_eq!(def.warning, None);
        assert_eq!(def.operator, Operator::Greater);
    }

    #[test]
    fn a_monitor_without_duration_is_refused() {
        assert!(monitor(r#","critical":0.5"#).is_err());
    }

    #[test]
    fn a_monitor_duration_outside_one_to_ten_is_refused() {
        assert!(monitor(r#","critical":0.5,"duration":0"#).is_err());
        assert!(monitor(r#","critical":0.5,"duration":11"#).is_err());
    }

    #[test]
    fn a_monitor_without_any_threshold_is_refused() {
        assert!(monitor(r#","duration":1"#).is_err());
    }

    #[test]
    fn missing_durations_must_be_multiples_of_ten_minutes() {
        assert!(monitor(r#","duration":1,"missingDurationWarning":15"#).is_err());
        assert!(monitor(r#","duration":1,"missingDurationWarning":0"#).is_err());
        assert!(monitor(r#","duration":1,"missingDurationCritical":10090"#).is_err());
        let def = monitor(r#","duration":1,"missingDurationCritical":20"#).expect("valid");
        assert_eq!(def.missing_duration_critical, Some(20));
    }

    #[test]
    fn only_service_monitors_are_accepted() {
        let body = br#"{"type":"host","name":"cpu","metric":"cpu.user.percentage","operator":">","critical":90,"duration":1}"#;
        assert!(parse_monitor_definition(body).is_err());
    }

    #[test]
    fn an_operator_other_than_greater_or_less_is_refused() {
        let body = br#"{"type":"service","name":"x","service":"ORG","metric":"m","operator":">=","critical":1,"duration":1}"#;
        assert!(parse_monitor_definition(body).is_err());
    }

    #[test]
    fn a_service_body_needs_a_valid_name() {
        assert!(parse_service_definition(br#"{"name":"x"}"#).is_err());
        let def = parse_service_definition(br#"{"name":"ORG","memo":"demo"}"#).expect("valid");
        assert_eq!(
            def,
            ServiceDefinition {
                name: "ORG".into(),
                memo: "demo".into()
            }
        );
    }
}
