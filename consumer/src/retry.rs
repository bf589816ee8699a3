//! What to do after each try of a tsdb request, decided in one small pure
//! function, and how long to wait before the next try (capped exponential
//! backoff with full jitter, or what the server asked for).

use std::time::{Duration, SystemTime};

use sfn_mackerel_message::SetAsideReason;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// How one try ended, as seen by the client.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The server answered with this status.
    Answered {
        status: u16,
        /// From a `Retry-After` header, if any.
        retry_after: Option<Duration>,
        /// Mackerel's `error.message`, or the start of the body.
        message: String,
    },
    /// No answer within the request timeout.
    TimedOut,
    /// No connection, or it broke before an answer.
    Unreachable(String),
}

/// The decision after a try.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Worth trying again; wait at least `not_before` when the server said so.
    Retry {
        not_before: Option<Duration>,
    },
    /// The key was refused: fetch it again (it may have been rotated), try once more.
    RefreshKey,
    /// Trying again cannot help; the messages go to the DLQ with this reason.
    Permanent(SetAsideReason),
}

/// Classifies one try: 2xx done; 429, 5xx, timeouts and connection errors
/// retried; 401/403 refresh the key; 404 unknown service; other 4xx permanent.
pub fn classify(result: &AttemptResult) -> Verdict {
    match result {
        AttemptResult::TimedOut | AttemptResult::Unreachable(_) => {
            Verdict::Retry { not_before: None }
        }
        AttemptResult::Answered {
            status,
            retry_after,
            ..
        } => match status {
            200..=299 => Verdict::Delivered,
            429 | 500..=599 => Verdict::Retry {
                not_before: *retry_after,
            },
            401 | 403 => Verdict::RefreshKey,
            404 => Verdict::Permanent(SetAsideReason::UnknownService),
            // 408 Request Timeout is the server giving up on a slow client: transient.
            408 => Verdict::Retry { not_before: None },
            _ => Verdict::Permanent(SetAsideReason::MackerelRejected),
        },
    }
}

/// The wait before retry number `retry` (1 for the first retry): a uniformly
/// random duration between zero and `min(cap, base * 2^(retry-1))` ("full
/// jitter"), where `unit` is a random number in `[0, 1)`.
pub fn backoff(retry: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// Reads a `Retry-After` header: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 with "GMT".
    let moment = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let target =
        SystemTime::UNIX_EPOCH + Duration::from_secs(moment.unix_timestamp().max(0) as u64);
    Some(target.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> AttemptResult {
        AttemptResult::Answered {
            status,
            retry_after: None,
            message: String::new(),
        }
    }

    #[test]
    fn success_is_delivered() {
        assert_eq!(classify(&answered(200)), Verdict::Delivered);
    }

    #[test]
    fn overload_server_errors_and_network_trouble_are_retried() {
        for result in [
            answered(429),
            answered(500),
            answered(502),
            answered(503),
            answered(504),
            AttemptResult::TimedOut,
            AttemptResult::Unreachable("connection refused".into()),
        ] {
            assert_eq!(
                classify(&result),
                Verdict::Retry { not_before: None },
                "{result:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_carried_into_the_verdict() {
        let result = AttemptResult::Answered {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
            message: String::new(),
        };
        assert_eq!(
            classify(&result),
            Verdict::Retry {
                not_before: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn a_refused_key_is_fetched_again() {
        assert_eq!(classify(&answered(401)), Verdict::RefreshKey);
        assert_eq!(classify(&answered(403)), Verdict::RefreshKey);
    }

    #[test]
    fn unknown_service_and_bad_requests_are_permanent() {
        assert_eq!(
            classify(&answered(404)),
            Verdict::Permanent(SetAsideReason::UnknownService)
        );
        for status in [400, 409, 413, 422] {
            assert_eq!(
                classify(&answered(status)),
                Verdict::Permanent(SetAsideReason::MackerelRejected),
                "{status}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(200);
        let cap = Duration::from_secs(2);
        let ceilings: Vec<u128> = (1..=6)
            .map(|retry| backoff(retry, base, cap, 1.0).as_millis())
            .collect();
        assert_eq!(ceilings, vec![200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn backoff_is_fully_jittered() {
        let base = Duration::from_millis(200);
        let cap = Duration::from_secs(2);
        assert_eq!(backoff(3, base, cap, 0.0), Duration::ZERO);
        assert_eq!(backoff(3, base, cap, 0.5), Duration::from_millis(400));
    }

    #[test]
    fn backoff_never_overflows() {
        let wait = backoff(
            u32::MAX,
            Duration::from_secs(1),
            Duration::from_secs(30),
            1.0,
        );
        assert_eq!(wait, Duration::from_secs(30));
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767); // 08:49:27 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
