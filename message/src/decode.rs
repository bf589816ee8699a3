//! Turning one SQS message body into the metric values it carries, or into the
//! reason it must be set aside. Each record is decoded on its own so that one bad
//! message can never fail the batch it came in.

use serde_json::{Map, Value};

use crate::names::{check_metric_name, check_service_name};
use crate::reason::{Rejection, SetAsideReason};
use crate::timestamp::{json_type_name, outside_window, parse_time, TimeWindow};

/// The only format version this crate knows; a message may omit `version`.
pub const FORMAT_VERSION: u64 = 1;

/// What decoding needs from outside the body.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext {
    /// When SQS received the message (epoch seconds): the time of values that
    /// carry none, i.e. when the workflow sent the result.
    pub sent_at: Option<i64>,
    /// The times Mackerel would keep.
    pub window: TimeWindow,
}

/// One value to post: a metric name, a finite number and its epoch second.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    pub name: String,
    pub value: f64,
    pub time: i64,
}

/// A valid message: the Mackerel service and the values it carries (at least one).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub service: String,
    pub values: Vec<MetricValue>,
}

/// Keys of the payload the older Lambda-per-metric setup sent.
const LEGACY_SERVICE: &str = "service-name";
const LEGACY_NAME: &str = "metric-name";
const LEGACY_VALUE: &str = "metric-value";

/// Decodes and validates one message body.
///
/// Accepted forms (unknown extra fields are ignored, so a workflow may attach
/// context such as the error it caught):
/// - one value: `{"service", "name", "value", "time"?}`
/// - several: `{"service", "time"?, "metrics": [{"name", "value", "time"?}, ...]}`
/// - legacy: `{"service-name", "metric-name", "metric-value", "time"?}`
pub fn decode(body: &str, context: &DecodeContext) -> Result<Decoded, Rejection> {
    let parsed: Value = serde_json::from_str(body).map_err(|error| {
        if error.to_string().contains("number out of range") {
            Rejection::new(
                SetAsideReason::NonFiniteValue,
                format!("a number does not fit a 64-bit float: {error}"),
            )
        } else {
            Rejection::new(
                SetAsideReason::MalformedJson,
                format!("body is not JSON: {error}"),
            )
        }
    })?;
    let Value::Object(object) = parsed else {
        return Err(invalid(format!(
            "body must be a JSON object, not {}",
            json_type_name(&parsed)
        )));
    };
    check_version(&object)?;

    let legacy = [LEGACY_SERVICE, LEGACY_NAME, LEGACY_VALUE]
        .iter()
        .any(|key| object.contains_key(*key));
    let decoded = if legacy {
        decode_legacy(&object, context)?
    } else {
        decode_v1(&object, context)?
    };
    validate(&decoded, &context.window)?;
    Ok(decoded)
}

fn check_version(object: &Map<String, Value>) -> Result<(), Rejection> {
    match object.get("version") {
        None => Ok(()),
        Some(Value::Number(n)) if n.as_u64() == Some(FORMAT_VERSION) => Ok(()),
        Some(other) => Err(Rejection::new(
            SetAsideReason::UnsupportedVersion,
            format!(
                "version {other} is not supported; this consumer reads version {FORMAT_VERSION}"
            ),
        )),
    }
}

fn decode_v1(object: &Map<String, Value>, context: &DecodeContext) -> Result<Decoded, Rejection> {
    let service = required_string(object, "service")?;
    let message_time = optional_time(object, "")?.or(context.sent_at);

    let values = match object.get("metrics") {
        Some(metrics) => {
            if object.contains_key("name") || object.contains_key("value") {
                return Err(invalid(
                    "a message has either \"metrics\" or \"name\" and \"value\", not both",
                ));
            }
            let Value::Array(items) = metrics else {
                return Err(invalid(format!(
                    "\"metrics\" must be an array, not {}",
                    json_type_name(metrics)
                )));
            };
            if items.is_empty() {
                return Err(invalid("\"metrics\" is empty; send at least one value"));
            }
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let Value::Object(metric) = item else {
                        return Err(invalid(format!(
                            "metrics[{index}] must be an object, not {}",
                            json_type_name(item)
                        )));
                    };
                    let at = format!("metrics[{index}]: ");
                    let name = required_string(metric, "name").map_err(|r| prefix(r, &at))?;
                    let value = required_number(metric, "value").map_err(|r| prefix(r, &at))?;
                    let time = optional_time(metric, &at)?.or(message_time);
                    Ok(MetricValue {
                        name,
                        value,
                        time: time.ok_or_else(no_time)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => vec![MetricValue {
            name: required_string(object, "name")?,
            value: required_number(object, "value")?,
            time: message_time.ok_or_else(no_time)?,
        }],
    };
    Ok(Decoded { service, values })
}

fn decode_legacy(
    object: &Map<String, Value>,
    context: &DecodeContext,
) -> Result<Decoded, Rejection> {
    if ["service", "name", "value", "metrics"]
        .iter()
        .any(|key| object.contains_key(*key))
    {
        return Err(invalid(
            "message mixes the legacy keys (service-name, metric-name, metric-value) with format v1 keys; use one form",
        ));
    }
    let time = optional_time(object, "")?.or(context.sent_at);
    Ok(Decoded {
        service: required_string(object, LEGACY_SERVICE)?,
        values: vec![MetricValue {
            name: required_string(object, LEGACY_NAME)?,
            value: required_number(object, LEGACY_VALUE)?,
            time: time.ok_or_else(no_time)?,
        }],
    })
}

fn validate(decoded: &Decoded, window: &TimeWindow) -> Result<(), Rejection> {
    check_service_name(&decoded.service)
        .map_err(|detail| Rejection::new(SetAsideReason::InvalidServiceName, detail))?;
    for metric in &decoded.values {
        check_metric_name(&metric.name)
            .map_err(|detail| Rejection::new(SetAsideReason::InvalidMetricName, detail))?;
        if !metric.value.is_finite() {
            return Err(Rejection::new(
                SetAsideReason::NonFiniteValue,
                format!("value of {} is not a finite number", metric.name),
            ));
        }
        if let Some((too_old, detail)) = outside_window(metric.time, window) {
            let reason = if too_old {
                SetAsideReason::TooOld
            } else {
                SetAsideReason::TooFarInFuture
            };
            return Err(Rejection::new(reason, format!("{}: {detail}", metric.name)));
        }
    }
    Ok(())
}

fn required_string(object: &Map<String, Value>, key: &str) -> Result<String, Rejection> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(invalid(format!(
            "\"{key}\" must be a string, not {}",
            json_type_name(other)
        ))),
        None => Err(invalid(format!("\"{key}\" is missing"))),
    }
}

fn required_number(object: &Map<String, Value>, key: &str) -> Result<f64, Rejection> {
    match object.get(key) {
        Some(Value::Number(number)) => number.as_f64().ok_or_else(|| {
            Rejection::new(
                SetAsideReason::NonFiniteValue,
                format!("\"{key}\" {number} is not a finite number"),
            )
        }),
        Some(other) => Err(invalid(format!(
            "\"{key}\" must be a number, not {}",
            json_type_name(other)
        ))),
        None => Err(invalid(format!("\"{key}\" is missing"))),
    }
}

fn optional_time(object: &Map<String, Value>, at: &str) -> Result<Option<i64>, Rejection> {
    match object.get("time") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_time(value)
            .map(Some)
            .map_err(|detail| invalid(format!("{at}{detail}"))),
    }
}

fn invalid(detail: impl Into<String>) -> Rejection {
    Rejection::new(SetAsideReason::InvalidMessage, detail)
}

fn prefix(rejection: Rejection, at: &str) -> Rejection {
    Rejection {
        detail: format!("{at}{}", rejection.detail),
        ..rejection
    }
}

fn no_time() -> Rejection {
    invalid("no \"time\" in the message and no SentTimestamp on the record")
}
