//! What to do after each try of a tsdb request, decided in one small pure
//! function, and how long to wait before the next try (capped exponential
//! backoff with full jitter, or what the server asked for, never beyond the
//! time left). Everything here reads bytes a server chose: nothing may panic.

use std::time::Duration;

use sfn_mackerel_message::SetAsideReason;

/// How one try ended, as seen by the client.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The server answered.
    Answered(Answer),
    /// No answer within the request timeout.
    TimedOut,
    /// No connection, or it broke before a whole answer arrived.
    Unreachable(String),
}

/// A server's answer, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// What a `Retry-After` header asked for, when it could be read. Untrusted:
    /// a wait is never longer than the time left.
    pub retry_after: Option<Duration>,
    /// A redirect's `Location`, cleaned for logs (never followed).
    pub location: Option<String>,
    /// Whether the body was Mackerel's success answer, `{"success": true}`.
    pub mackerel_success: bool,
    /// Mackerel's `error.message`, or the start of the body.
    pub message: String,
}

impl Answer {
    /// What Mackerel itself answers with this status (for tests and fakes):
    /// `{"success": true}` for 200, an error message otherwise.
    pub fn mackerel(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            location: None,
            mackerel_success: status == 200,
            message: if status == 200 {
                String::new()
            } else {
                format!("HTTP {status}")
            },
        }
    }
}

impl AttemptResult {
    /// Mackerel's own answer with this status (see [`Answer::mackerel`]).
    pub fn mackerel(status: u16) -> Self {
        Self::Answered(Answer::mackerel(status))
    }
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
    /// Mackerel refused what the request carries (400, 413, 422): another
    /// request without the refused values can succeed, so the request is split.
    RefusedContent,
    /// Trying again cannot help; the messages go to the DLQ with this reason.
    Permanent(SetAsideReason),
}

/// Classifies one try:
/// - 2xx with Mackerel's success answer: delivered. Any other 2xx (a proxy's
///   page, a 202) proves nothing was stored: retried like a 5xx.
/// - 3xx: never followed (the key would go to another host): a configuration
///   problem, parked as `mackerel_redirected`.
/// - 429, 5xx, 408, timeouts and connection errors: retried.
/// - 401/403: fetch the key again; 404: unknown service.
/// - 400, 413, 422: the content was refused; other 4xx: permanent.
pub fn classify(result: &AttemptResult) -> Verdict {
    let answer = match result {
        AttemptResult::TimedOut | AttemptResult::Unreachable(_) => {
            return Verdict::Retry { not_before: None }
        }
        AttemptResult::Answered(answer) => answer,
    };
    match answer.status {
        200..=299 if answer.mackerel_success => Verdict::Delivered,
        200..=299 => Verdict::Retry { not_before: None },
        300..=399 => Verdict::Permanent(SetAsideReason::MackerelRedirected),
        429 | 500..=599 => Verdict::Retry {
            not_before: answer.retry_after,
        },
        401 | 403 => Verdict::RefreshKey,
        404 => Verdict::Permanent(SetAsideReason::UnknownService),
        // 408 Request Timeout is the server giving up on a slow client: transient.
        408 => Verdict::Retry { not_before: None },
        400 | 413 | 422 => Verdict::RefusedContent,
        // 1xx cannot end a request; anything else unknown is not worth repeating.
        _ => Verdict::Permanent(SetAsideReason::MackerelRejected),
    }
}

/// The wait before retry number `retry` (1 for the first retry): a uniformly
/// random duration between zero and `min(cap, base * 2^(retry-1))` ("full
/// jitter"), where `unit` is a random number in `[0, 1)`.
pub fn backoff(retry: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ceiling.mul_f64(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> AttemptResult {
        AttemptResult::mackerel(status)
    }

    #[test]
    fn mackerels_success_answer_is_delivered() {
        assert_eq!(classify(&answered(200)), Verdict::Delivered);
    }

    #[test]
    fn a_2xx_that_is_not_mackerels_answer_is_retried_never_counted_as_posted() {
        for status in [200, 202, 204] {
            let proxy_page = AttemptResult::Answered(Answer {
                mackerel_success: false,
                message: "<html>maintenance</html>".into(),
                ..Answer::mackerel(status)
            });
            assert_eq!(
                classify(&proxy_page),
                Verdict::Retry { not_before: None },
                "{status}"
            );
        }
    }

    #[test]
    fn a_redirect_is_never_followed_and_parks_the_messages() {
        for status in [301, 302, 303, 307, 308] {
            assert_eq!(
                classify(&answered(status)),
                Verdict::Permanent(SetAsideReason::MackerelRedirected),
                "{status}"
            );
        }
    }

    #[test]
    fn overload_server_errors_and_network_trouble_are_retried() {
        for result in [
            answered(429),
            answered(500),
            answered(502),
            answered(503),
            answered(504),
            answered(408),
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
        let result = AttemptResult::Answered(Answer {
            retry_after: Some(Duration::from_secs(3)),
            ..Answer::mackerel(429)
        });
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
    fn refused_content_is_split_and_other_client_errors_are_permanent() {
        assert_eq!(
            classify(&answered(404)),
            Verdict::Permanent(SetAsideReason::UnknownService)
        );
        for status in [400, 413, 422] {
            assert_eq!(
                classify(&answered(status)),
                Verdict::RefusedContent,
                "{status}"
            );
        }
        for status in [405, 409, 418, 451] {
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
    fn backoff_never_overflows_nor_panics_on_a_bad_random_number() {
        let wait = backoff(
            u32::MAX,
            Duration::from_secs(1),
            Duration::from_secs(30),
            1.0,
        );
        assert_eq!(wait, Duration::from_secs(30));
        for unit in [f64::NAN, f64::INFINITY, -1.0, 7.0] {
            assert!(
                backoff(2, Duration::from_secs(1), Duration::from_secs(30), unit)
                    <= Duration::from_secs(2)
            );
        }
    }
}
