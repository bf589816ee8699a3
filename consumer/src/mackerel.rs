//! The HTTP side of Mackerel: one tsdb request with a timeout, its answer
//! reduced to what the retry logic needs, and one series read (for job statuses,
//! see `alerting`). Redirects are never followed
//! (reqwest would resend `X-Api-Key` to the new host), an answer body is read
//! only up to a bound, and the key travels only in a header marked sensitive,
//! so it never shows in logs or errors.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use crate::alerting::StatusPoint;
use crate::api_key::ApiKey;
use crate::delivery::{SeriesRange, Transport};
use crate::retry::{Answer, AttemptResult};

/// The most of an answer body that is read: Mackerel's answers are a few bytes,
/// and a server sending more gets no more of this function's memory.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// The most of a series read's answer that is read: a day of one point a minute
/// takes under 80 KiB; more is not an answer this consumer asked for.
pub const MAX_SERIES_ANSWER_BYTES: usize = 512 * 1024;

/// How much of a server-chosen text (a Location, an error body) goes into a log or a DLQ detail.
const MAX_QUOTED_CHARS: usize = 200;

/// Posts service metrics to a Mackerel API base URL.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    api_base: String,
}

impl HttpTransport {
    /// `api_base` without a trailing slash, e.g. `https://api.mackerelio.com`.
    pub fn new(api_base: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sfn-mackerel-consumer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn tsdb_url(&self, service: &str) -> String {
        format!("{}/api/v0/services/{service}/tsdb", self.api_base)
    }

    /// Service and metric names are validated to `[a-zA-Z0-9._-]+`, so they
    /// need no escaping in a path or a query.
    pub fn series_url(&self, service: &str, name: &str, range: SeriesRange) -> String {
        format!(
            "{}/api/v0/services/{service}/metrics?name={name}&from={}&to={}",
            self.api_base, range.from, range.to
        )
    }
}

/// Reads at most `limit` bytes of an answer body; says whether there was more.
async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(bytes) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() > room {
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

impl Transport for HttpTransport {
    async fn post_tsdb(
        &self,
        service: &str,
        body: &[u8],
        key: &ApiKey,
        timeout: Duration,
    ) -> AttemptResult {
        let mut key_header = key.header_value();
        key_header.set_sensitive(true);
        let sent = self
            .client
            .post(self.tsdb_url(service))
            .header("X-Api-Key", key_header)
            .header(CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let answer_body = match read_bounded(&mut response, MAX_ANSWER_BYTES).await {
            // What is past the bound is not needed to classify the answer.
            Ok((body, _)) => body,
            // An answer cut short says nothing about what was stored: try again.
            Err(error) => return transport_failure(&error),
        };
        read_answer(status, &headers, &answer_body, SystemTime::now())
    }

    async fn read_series(
        &self,
        service: &str,
        name: &str,
        range: SeriesRange,
        key: &ApiKey,
        timeout: Duration,
    ) -> Result<Vec<StatusPoint>, String> {
        let mut key_header = key.header_value();
        key_header.set_sensitive(true);
        let sent = self
            .client
            .get(self.series_url(service, name, range))
            .header("X-Api-Key", key_header)
            .timeout(timeout)
            .send()
            .await;
        let describe = |error: &reqwest::Error| match transport_failure(error) {
            AttemptResult::TimedOut => "no answer within the request timeout".to_owned(),
            AttemptResult::Unreachable(why) => format!("could not reach Mackerel: {why}"),
            AttemptResult::Answered(_) => "the answer could not be read".to_owned(),
        };
        let mut response = sent.map_err(|error| describe(&error))?;
        let status = response.status().as_u16();
        let (body, cut) = read_bounded(&mut response, MAX_SERIES_ANSWER_BYTES)
            .await
            .map_err(|error| describe(&error))?;
        if cut {
            return Err(format!(
                "HTTP {status} with an answer over {MAX_SERIES_ANSWER_BYTES} bytes"
            ));
        }
        read_series_answer(status, &body)
    }
}

/// Reads a series read's answer: Mackerel's `{"metrics": [{"time", "value"}]}`.
/// A 404 means the series (or its service) holds nothing yet. Pure and total.
pub fn read_series_answer(status: u16, body: &[u8]) -> Result<Vec<StatusPoint>, String> {
    #[derive(serde::Deserialize)]
    struct Series {
        metrics: Vec<SeriesPoint>,
    }
    #[derive(serde::Deserialize)]
    struct SeriesPoint {
        time: f64,
        value: f64,
    }
    if status == 404 {
        return Ok(Vec::new());
    }
    let text = String::from_utf8_lossy(body);
    if status != 200 {
        let mut why = format!("HTTP {status}");
        let message = error_message(&text);
        if !message.is_empty() {
            why.push_str(&format!(": {message}"));
        }
        return Err(why);
    }
    let series: Series = serde_json::from_str(&text)
        .map_err(|error| format!("HTTP 200 without a series in it ({error})"))?;
    // Epoch seconds a server could send that an i64 holds with room to spare.
    const LATEST_TIME: f64 = 1e15;
    series
        .metrics
        .into_iter()
        .map(|point| {
            if point.time.is_finite() && point.time.abs() < LATEST_TIME && point.value.is_finite() {
                Ok(StatusPoint {
                    time: point.time as i64,
                    value: point.value,
                })
            } else {
                Err(format!(
                    "HTTP 200 with a point that is not one (time {}, value {})",
                    point.time, point.value
                ))
            }
        })
        .collect()
}

/// Reduces a server's answer to what the retry logic needs. Pure and total:
/// any status, header and body bytes give a result, never a panic.
pub fn read_answer(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> AttemptResult {
    let text = |value: &HeaderValue| String::from_utf8_lossy(value.as_bytes()).into_owned();
    let retry_after = headers
        .get(RETRY_AFTER)
        .map(text)
        .and_then(|value| parse_retry_after(&value, now));
    let location = (300..400).contains(&status).then(|| {
        headers
            .get(LOCATION)
            .map(|value| quote(&text(value)))
            .unwrap_or_else(|| "(no Location header)".to_owned())
    });
    let body = String::from_utf8_lossy(body);
    let mackerel_success = is_mackerel_success(&body);
    let message = if mackerel_success {
        String::new()
    } else {
        error_message(&body)
    };
    AttemptResult::Answered(Answer {
        status,
        retry_after,
        location,
        mackerel_success,
        message,
    })
}

/// Whether a body is Mackerel's answer to a stored post: `{"success": true}`.
pub fn is_mackerel_success(body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Success {
        success: bool,
    }
    serde_json::from_str::<Success>(body).is_ok_and(|answer| answer.success)
}

/// Reads a `Retry-After` header: delta-seconds or an HTTP date. Any size is
/// accepted here (the caller never waits beyond the time it has); `None` for
/// anything else, including negative numbers.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 with "GMT".
    let moment = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let target = u64::try_from(moment.unix_timestamp())
        .ok()
        .and_then(|seconds| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds)))?;
    Some(target.duration_since(now).unwrap_or(Duration::ZERO))
}

fn transport_failure(error: &reqwest::Error) -> AttemptResult {
    if error.is_timeout() {
        return AttemptResult::TimedOut;
    }
    // The error's source chain says why (refused, reset, DNS); the URL holds no secret.
    let mut why = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    AttemptResult::Unreachable(why)
}

/// Mackerel's `{"error": {"message": "..."}}`, or the start of whatever came back.
pub fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: ErrorDetail,
    }
    #[derive(serde::Deserialize)]
    struct ErrorDetail {
        message: String,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) => quote(&parsed.error.message),
        Err(_) => quote(body),
    }
}

/// A server-chosen text made safe for one log line: control characters
/// replaced, at most [`MAX_QUOTED_CHARS`] characters.
pub fn quote(text: &str) -> String {
    text.chars()
        .take(MAX_QUOTED_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderName;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn answer(result: AttemptResult) -> Answer {
        match result {
            AttemptResult::Answered(answer) => answer,
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn mackerels_success_answer_is_recognised() {
        let got = answer(read_answer(
            200,
            &HeaderMap::new(),
            br#"{"success":true}"#,
            SystemTime::now(),
        ));
        assert!(got.mackerel_success);
        assert!(is_mackerel_success(r#" { "success" : true } "#));
        assert!(!is_mackerel_success(r#"{"success":false}"#));
        assert!(!is_mackerel_success("<html>ok</html>"));
        assert!(!is_mackerel_success(""));
    }

    #[test]
    fn a_redirect_names_its_location_cleaned_for_a_log_line() {
        let got = answer(read_answer(
            302,
            &headers(&[("location", b"https://elsewhere.example/\tx")]),
            b"",
            SystemTime::now(),
        ));
        assert_eq!(
            got.location.as_deref(),
            Some("https://elsewhere.example/ x")
        );
        let got = answer(read_answer(301, &HeaderMap::new(), b"", SystemTime::now()));
        assert_eq!(got.location.as_deref(), Some("(no Location header)"));
    }

    #[test]
    fn mackerel_error_bodies_yield_their_message() {
        assert_eq!(
            error_message(r#"{"error": {"message": "Service not found"}}"#),
            "Service not found"
        );
    }

    #[test]
    fn other_bodies_are_cut_short_on_one_line() {
        assert_eq!(error_message(&"x".repeat(1000)).len(), 200);
        assert_eq!(error_message("a\nb"), "a b");
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767); // 08:49:27 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:17 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn absurd_retry_after_values_are_read_without_panicking() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for value in [
            "-5",
            "soon",
            "",
            "1e9",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
        ] {
            let _ = parse_retry_after(value, now);
        }
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn a_series_answer_gives_its_points_oldest_first() {
        let points = read_series_answer(
            200,
            br#"{"metrics":[{"time":1795981380,"value":1},{"time":1795981440,"value":0.0}]}"#,
        )
        .unwrap();
        assert_eq!(
            points,
            vec![
                StatusPoint {
                    time: 1_795_981_380,
                    value: 1.0
                },
                StatusPoint {
                    time: 1_795_981_440,
                    value: 0.0
                }
            ]
        );
    }

    #[test]
    fn a_series_that_does_not_exist_yet_holds_nothing() {
        assert_eq!(read_series_answer(404, b"{}"), Ok(Vec::new()));
    }

    #[test]
    fn a_series_answer_that_is_not_one_is_a_failed_read() {
        for (status, body) in [
            (200, &b"<html>proxy</html>"[..]),
            (200, br#"{"metrics":[{"time":1e300,"value":1}]}"#),
            (200, br#"{"metrics":[{"time":"soon","value":1}]}"#),
            (302, b""),
            (500, br#"{"error":{"message":"internal"}}"#),
            (200, b"\xff\xfe"),
        ] {
            assert!(
                read_series_answer(status, body).is_err(),
                "{status} {body:?}"
            );
        }
        assert_eq!(
            read_series_answer(500, br#"{"error":{"message":"internal"}}"#),
            Err("HTTP 500: internal".to_owned())
        );
    }

    #[test]
    fn header_bytes_that_are_not_text_do_not_break_the_reading() {
        let got = answer(read_answer(
            429,
            &headers(&[("retry-after", b"\xff\xfe"), ("location", b"\xff")]),
            b"\xff\xfe\xfd",
            SystemTime::now(),
        ));
        assert_eq!(got.retry_after, None);
        assert!(!got.mackerel_success);
    }
}
