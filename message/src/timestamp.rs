//! When a value happened: parsing the `time` field (RFC 3339 or epoch seconds)
//! and the window of times Mackerel will really keep.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How old a value may be before Mackerel silently drops it (documented: 24 hours).
pub const MACKEREL_RETENTION_SECONDS: i64 = 24 * 60 * 60;

/// Values this close to Mackerel's 24-hour limit are set aside too: they could
/// cross it between the check and Mackerel receiving them (retries, slow requests).
pub const TOO_OLD_SAFETY_MARGIN_SECONDS: i64 = 5 * 60;

/// The default allowance for values stamped in the future (clock skew between the
/// workflow and the consumer). A value far in the future would become a series'
/// latest point and stop Mackerel's monitors from evaluating newer, real points.
pub const DEFAULT_MAX_FUTURE_SECONDS: i64 = 10 * 60;

/// Epoch values above this are almost certainly milliseconds (year 5138 in seconds).
const LOOKS_LIKE_MILLISECONDS: i64 = 100_000_000_000;

/// The range of epoch seconds a value may carry to be posted, relative to "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// The oldest accepted time (inclusive).
    pub oldest: i64,
    /// The newest accepted time (inclusive).
    pub newest: i64,
}

impl TimeWindow {
    /// The window Mackerel keeps, seen from `now`, with the given future allowance.
    pub fn around(now: i64, max_future_seconds: i64) -> Self {
        Self {
            oldest: now - MACKEREL_RETENTION_SECONDS + TOO_OLD_SAFETY_MARGIN_SECONDS,
            newest: now + max_future_seconds,
        }
    }

    /// Every time: for reading a body's times without judging them.
    pub fn unbounded() -> Self {
        Self {
            oldest: i64::MIN / 2,
            newest: i64::MAX / 2,
        }
    }
}

/// Reads a `time` field: an RFC 3339 string with any offset and fraction
/// (the fraction is truncated to whole seconds), or integer epoch seconds.
/// The minute (epoch minutes) Mackerel stores a time (epoch seconds) in: it
/// keeps one value per name and minute.
pub fn minute_of(time: i64) -> i64 {
    time.div_euclid(60)
}

pub fn parse_time(value: &Value) -> Result<i64, String> {
    match value {
        Value::String(text) => parse_rfc3339(text),
        Value::Number(number) => {
            if let Some(seconds) = number.as_i64() {
                Ok(seconds)
            } else if let Some(float) = number.as_f64().filter(|f| f.fract() == 0.0) {
                if float.abs() < 1e15 {
                    Ok(float as i64)
                } else {
                    Err(format!("time {number} is out of range"))
                }
            } else {
                Err(format!(
                    "time {number} is not whole epoch seconds; send an integer or an RFC 3339 string"
                ))
            }
        }
        other => Err(format!(
            "time must be an RFC 3339 string or integer epoch seconds, not {}",
            json_type_name(other)
        )),
    }
}

/// Parses RFC 3339 (`2026-11-29T19:43:43.229Z`, `2026-11-29T19:43:43.229000+00:00`).
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|moment| moment.unix_timestamp())
        .map_err(|error| {
            format!("time {text:?} is not RFC 3339 (e.g. 2026-11-29T19:43:43Z): {error}")
        })
}

/// Formats epoch seconds as RFC 3339 UTC, for messages and reports.
pub fn format_epoch(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|moment| moment.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("epoch {seconds}"))
}

/// Explains why `time` falls outside `window`, or `None` when it is inside.
pub(crate) fn outside_window(time: i64, window: &TimeWindow) -> Option<(bool, String)> {
    if time < window.oldest {
        return Some((
            true,
            format!(
                "time {} is more than 24 hours old (less a {}-minute margin); Mackerel would accept it and silently drop it",
                format_epoch(time),
                TOO_OLD_SAFETY_MARGIN_SECONDS / 60
            ),
        ));
    }
    if time > window.newest {
        let hint = if time > LOOKS_LIKE_MILLISECONDS {
            "; it looks like epoch milliseconds, send seconds"
        } else {
            ""
        };
        return Some((
            false,
            format!(
                "time {} is further in the future than the allowed clock skew (until {}){hint}",
                format_epoch(time),
                format_epoch(window.newest)
            ),
        ));
    }
    None
}

pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERED: i64 = 1_795_981_423; // 2026-11-29T19:43:43Z

    #[test]
    fn aws_entered_time_with_milliseconds_and_z() {
        assert_eq!(parse_time(&json!("2026-11-29T19:43:43.229Z")), Ok(ENTERED));
    }

    #[test]
    fn emulator_entered_time_with_microseconds_and_offset() {
        assert_eq!(
            parse_time(&json!("2026-11-29T19:43:43.229000+00:00")),
            Ok(ENTERED)
        );
    }

    #[test]
    fn other_offsets_are_converted_to_utc() {
        assert_eq!(parse_time(&json!("2026-11-30T04:43:43+09:00")), Ok(ENTERED));
    }

    #[test]
    fn integer_epoch_seconds() {
        assert_eq!(parse_time(&json!(ENTERED)), Ok(ENTERED));
        assert_eq!(parse_time(&json!(ENTERED as f64)), Ok(ENTERED));
    }

    #[test]
    fn fractional_epoch_is_refused() {
        assert!(parse_time(&json!(1.5)).is_err());
    }

    #[test]
    fn dates_without_time_or_offset_are_refused() {
        for text in ["2026-11-29", "2026-11-29T19:43:43", "yesterday", ""] {
            assert!(parse_time(&json!(text)).is_err(), "{text}");
        }
    }

    #[test]
    fn other_json_types_are_refused() {
        assert!(parse_time(&json!(true)).unwrap_err().contains("boolean"));
        assert!(parse_time(&json!(null)).is_err());
    }

    #[test]
    fn window_keeps_a_margin_before_mackerels_24_hours() {
        let window = TimeWindow::around(ENTERED, 600);
        let a_day_ago = ENTERED - MACKEREL_RETENTION_SECONDS;
        assert!(outside_window(a_day_ago + 60, &window).is_some());
        assert!(outside_window(a_day_ago + TOO_OLD_SAFETY_MARGIN_SECONDS, &window).is_none());
        assert!(outside_window(ENTERED + 600, &window).is_none());
        assert!(outside_window(ENTERED + 601, &window).is_some());
    }

    #[test]
    fn milliseconds_by_mistake_get_a_hint() {
        let window = TimeWindow::around(ENTERED, 600);
        let (_, detail) = outside_window(ENTERED * 1000, &window).unwrap();
        assert!(detail.contains("milliseconds"), "{detail}");
    }
}
