//! Turning one SQS message body into the metric values it carries, or into the
//! reason it must be set aside. Each record is decoded on its own so that one bad
//! message can never fail the batch it came in.

use serde_json::{Map, Value};

use crate::events::{is_event, map_event, EventMapping};
use crate::names::{check_metric_name, check_service_name};
use crate::reason::{Rejection, SetAsideReason};
use crate::timestamp::{json_type_name, outside_window, parse_time, TimeWindow};

/// The only format version this crate knows; a message may omit `version`.
pub const FORMAT_VERSION: u64 = 1;

/// What decoding needs from outside the body.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext {
    /// When the message was first sent (epoch seconds): SQS's `SentTimestamp`,
    /// or the time a redriven copy carries from its first send. The time of
    /// values that carry none, i.e. when the workflow sent the result.
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

/// A valid message: the Mackerel service and the values it carries (at least
/// one for a job-result message; none for an event that reports nothing, such
/// as a RUNNING execution).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub service: String,
    pub values: Vec<MetricValue>,
    /// The EventBridge event's `id` when the body is an event: EventBridge
    /// delivers at least once, and the consumer posts one copy per batch.
    pub event_id: Option<String>,
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
///
/// An EventBridge event of a kind the consumer maps is set aside as
/// `event_not_covered` here (only the consumer knows how its deployment maps
/// events: [`decode_record`]); another kind as `unsupported_event`, a broken one
/// as `invalid_event`.
pub fn decode(body: &str, context: &DecodeContext) -> Result<Decoded, Rejection> {
    /// No deployment's mapping: built once, not per message.
    static UNMAPPED: std::sync::LazyLock<EventMapping> =
        std::sync::LazyLock::new(EventMapping::default);
    decode_record(body, context, &UNMAPPED)
}

/// Decodes and validates one queue record: a job-result message as
/// [`decode`] does, or an EventBridge event (a Glue job's or a workflow's
/// status change, `crate::events`) mapped by `events`. Both end validated by
/// the same rules (names, finite values, the time window).
pub fn decode_record(
    body: &str,
    context: &DecodeContext,
    events: &EventMapping,
) -> Result<Decoded, Rejection> {
    let decoded = match fast::decode_common_form(body, context) {
        Some(decoded) => decoded,
        None => decode_any_form(body, context, events)?,
    };
    validate(&decoded, &context.window)?;
    Ok(decoded)
}

/// Whether some value of the body carries no `time` of its own and so takes
/// the time the message was sent: a copy sent again later (a redrive) would
/// move such values unless the first send time travels with it. `false` for a
/// body that does not decode at all, since nothing of it would be posted.
pub fn takes_time_from_sending(body: &str) -> bool {
    let any_time = TimeWindow::unbounded();
    let without_sent_time = DecodeContext {
        sent_at: None,
        window: any_time,
    };
    let with_sent_time = DecodeContext {
        sent_at: Some(0),
        window: any_time,
    };
    decode(body, &without_sent_time).is_err() && decode(body, &with_sent_time).is_ok()
}

/// The general path: reads the body as a JSON tree so that every way a message
/// can be wrong gets its own reason and a detail naming the field.
fn decode_any_form(
    body: &str,
    context: &DecodeContext,
    events: &EventMapping,
) -> Result<Decoded, Rejection> {
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
    if is_event(&object) {
        return map_event(&Value::Object(object), events);
    }
    check_version(&object)?;

    let legacy = [LEGACY_SERVICE, LEGACY_NAME, LEGACY_VALUE]
        .iter()
        .any(|key| object.contains_key(*key));
    if legacy {
        decode_legacy(&object, context)
    } else {
        decode_v1(&object, context)
    }
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
    Ok(Decoded {
        service,
        values,
        event_id: None,
    })
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
        event_id: None,
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

/// The fast path for the form workflows send: typed, borrowing deserialization
/// with no JSON tree. It only accepts what the general path would accept with the
/// same values; anything unusual (legacy keys, wrong types, mixed forms, a
/// version other than 1, duplicate keys, numbers out of range) returns `None` and takes the
/// general path, which says precisely what is wrong. This halves the decoder's
/// cost: building and freeing the tree was most of it.
mod fast {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserializer, IgnoredAny, Visitor};
    use serde::Deserialize;

    use super::{DecodeContext, Decoded, MetricValue, FORMAT_VERSION};
    use crate::timestamp::parse_rfc3339;

    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        service: Cow<'a, str>,
        #[serde(borrow, default)]
        name: Present<Cow<'a, str>>,
        #[serde(default)]
        value: Present<f64>,
        #[serde(borrow, default)]
        time: Option<Time<'a>>,
        #[serde(borrow, default)]
        metrics: Present<Vec<Metric<'a>>>,
        #[serde(default)]
        version: Present<u64>,
        #[serde(rename = "service-name", default)]
        legacy_service: Present<IgnoredAny>,
        #[serde(rename = "metric-name", default)]
        legacy_name: Present<IgnoredAny>,
        #[serde(rename = "metric-value", default)]
        legacy_value: Present<IgnoredAny>,
    }

    /// A field that may be missing but, when present, must not be `null`: the
    /// general path treats a present key as present whatever its value, so a
    /// `null` must not quietly read as "missing" here.
    struct Present<T>(Option<T>);

    impl<T> Default for Present<T> {
        fn default() -> Self {
            Present(None)
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            T::deserialize(deserializer).map(|value| Present(Some(value)))
        }
    }

    #[derive(Deserialize)]
    struct Metric<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
        value: f64,
        #[serde(borrow, default)]
        time: Option<Time<'a>>,
    }

    /// A `time` as sent: whole epoch seconds or text (parsed later). `null` is absent.
    enum Time<'a> {
        Seconds(i64),
        Text(Cow<'a, str>),
        Null,
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Time<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct TimeVisitor;
            impl<'de> Visitor<'de> for TimeVisitor {
                type Value = Time<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("RFC 3339 text or whole epoch seconds")
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                    Ok(Time::Seconds(v))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                    i64::try_from(v)
                        .map(Time::Seconds)
                        .map_err(|_| E::custom("out of range"))
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Time::Text(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Time::Text(Cow::Owned(v.to_owned())))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                    Ok(Time::Null)
                }
            }
            // Fractional and float epochs are left to the general path.
            deserializer.deserialize_any(TimeVisitor)
        }
    }

    fn seconds(time: Option<Time<'_>>) -> Option<Option<i64>> {
        match time {
            None | Some(Time::Null) => Some(None),
            Some(Time::Seconds(seconds)) => Some(Some(seconds)),
            Some(Time::Text(text)) => parse_rfc3339(&text).ok().map(Some),
        }
    }

    /// `Some` only when the body is a well-formed v1 message; the values are not yet validated.
    pub(super) fn decode_common_form(body: &str, context: &DecodeContext) -> Option<Decoded> {
        let message: Message = serde_json::from_str(body).ok()?;
        if message.legacy_service.0.is_some()
            || message.legacy_name.0.is_some()
            || message.legacy_value.0.is_some()
            || message.version.0.is_some_and(|v| v != FORMAT_VERSION)
        {
            return None;
        }
        let message_time = seconds(message.time)?.or(context.sent_at);
        let values = match (message.metrics.0, message.name.0, message.value.0) {
            (Some(metrics), None, None) if !metrics.is_empty() => metrics
                .into_iter()
                .map(|metric| {
                    Some(MetricValue {
                        name: metric.name.into_owned(),
                        value: metric.value,
                        time: seconds(metric.time)?.or(message_time)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            (None, Some(name), Some(value)) => vec![MetricValue {
                name: name.into_owned(),
                value,
                time: message_time?,
            }],
            _ => return None,
        };
        Some(Decoded {
            service: message.service.into_owned(),
            values,
            event_id: None,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies at the edges of the two paths: wherever the fast path answers, the
    /// general path must give the very same values.
    const EDGE_BODIES: &[&str] = &[
        r#"{"service": "svc", "name": "a", "value": 1, "time": 1795981423}"#,
        r#"{"service": "svc", "name": "a", "value": 1.5e3, "time": "2026-11-29T19:43:43.229Z"}"#,
        r#"{"service": "svc", "name": "a", "value": -0.0}"#,
        r#"{"service": "svc", "name": "a", "value": 1, "time": null}"#,
        r#"{"service": "svc", "name": "a\u002eb", "value": 1}"#,
        r#"{"service": "svc", "name": null, "value": 1}"#,
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1}], "name": null}"#,
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1}], "value": null}"#,
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1, "extra": [1]}], "error": {}}"#,
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1, "time": 1.0}]}"#,
        r#"{"service": "svc", "metrics": [{"name": "a", "value": 1, "time": 1795981400}], "time": "x"}"#,
        r#"{"service": "svc", "metrics": null}"#,
        r#"{"service": "svc", "version": null, "name": "a", "value": 1}"#,
        r#"{"service": "svc", "version": 1, "name": "a", "value": 1}"#,
        r#"{"service": "svc", "service-name": null, "name": "a", "value": 1}"#,
        r#"{"service": "svc", "name": "a", "name": "b", "value": 1}"#,
        r#"{"service": "svc", "name": "a", "value": 1e400}"#,
        r#"{"service": "svc", "name": "a", "value": 18446744073709551616}"#,
        r#"{"service": "svc", "name": "a", "value": 1, "time": 18446744073709551615}"#,
        r#"{"service": "svc", "name": "a", "value": 1, "time": 1795981423, "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}"#,
    ];

    #[test]
    fn the_fast_path_agrees_with_the_general_path_wherever_it_answers() {
        let context = DecodeContext {
            sent_at: Some(1_795_981_400),
            window: TimeWindow::around(1_795_981_423, 600),
        };
        for body in EDGE_BODIES {
            if let Some(fast) = fast::decode_common_form(body, &context) {
                assert_eq!(
                    decode_any_form(body, &context, &EventMapping::default()),
                    Ok(fast),
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn a_null_where_a_value_belongs_is_left_to_the_general_path() {
        let context = DecodeContext {
            sent_at: Some(1_795_981_400),
            window: TimeWindow::around(1_795_981_423, 600),
        };
        for body in [
            r#"{"service": "svc", "metrics": [{"name": "a", "value": 1}], "name": null}"#,
            r#"{"service": "svc", "version": null, "name": "a", "value": 1}"#,
            r#"{"service": "svc", "service-name": null, "name": "a", "value": 1}"#,
        ] {
            assert!(fast::decode_common_form(body, &context).is_none(), "{body}");
            assert!(decode(body, &context).is_err(), "{body}");
        }
    }
}
