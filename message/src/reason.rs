//! Why a message was set aside instead of being posted: stable reason codes that
//! travel with the message into the dead-letter queue and that operators filter on.

use std::fmt;

/// A stable, machine-readable code for why a message could not be posted.
///
/// The codes are part of the DLQ contract (the `Reason` message attribute) and are
/// what `dlq redrive --reason` filters on, so they never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetAsideReason {
    /// The body is not JSON at all.
    MalformedJson,
    /// The body is JSON but not a job-result message: a field is missing, has the
    /// wrong type, or the forms are mixed.
    InvalidMessage,
    /// The message declares a format version this consumer does not know.
    UnsupportedVersion,
    /// The service name is one Mackerel would refuse.
    InvalidServiceName,
    /// A metric name is outside `[a-zA-Z0-9._-]+`.
    InvalidMetricName,
    /// A value is not a finite number (JSON cannot carry NaN or infinity).
    NonFiniteValue,
    /// A value is so old that Mackerel would accept it with 200 and drop it.
    TooOld,
    /// A value is further in the future than the configured allowance.
    TooFarInFuture,
    /// Mackerel answered 404: the service does not exist there.
    UnknownService,
    /// Mackerel refused the values (400 or another permanent 4xx).
    MackerelRejected,
    /// Mackerel refused the API key (401/403) even after it was fetched again.
    MackerelForbidden,
    /// The API base answered with a redirect, which is never followed (the API
    /// key would go to another host): `MACKEREL_API_BASE` is wrong.
    MackerelRedirected,
    /// One value alone is larger than a whole request may be (`MAX_REQUEST_BYTES`):
    /// its metric name is far longer than any real one.
    ValueTooLarge,
    /// The message's `SourceSentTimestamp` attribute (the time a redriven message
    /// was first sent) is not epoch milliseconds.
    InvalidSourceTimestamp,
    /// An EventBridge event of a kind the consumer does not map (only Glue Job
    /// State Change and Step Functions Execution Status Change are).
    UnsupportedEvent,
    /// A Glue job state or an execution status the mapping does not know.
    UnknownEventState,
    /// No `EVENT_SERVICE` / `EVENT_SERVICES` entry covers the job or state machine.
    EventNotCovered,
    /// An event of a known kind with a field missing or of the wrong type.
    InvalidEvent,
}

impl SetAsideReason {
    /// Every reason, in a stable order (for reports and help texts).
    pub const ALL: [SetAsideReason; 18] = [
        Self::MalformedJson,
        Self::InvalidMessage,
        Self::UnsupportedVersion,
        Self::InvalidServiceName,
        Self::InvalidMetricName,
        Self::NonFiniteValue,
        Self::TooOld,
        Self::TooFarInFuture,
        Self::UnknownService,
        Self::MackerelRejected,
        Self::MackerelForbidden,
        Self::MackerelRedirected,
        Self::ValueTooLarge,
        Self::InvalidSourceTimestamp,
        Self::UnsupportedEvent,
        Self::UnknownEventState,
        Self::EventNotCovered,
        Self::InvalidEvent,
    ];

    /// The code as it appears in the DLQ's `Reason` attribute and in logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnsupportedVersion => "unsupported_version",
            Self::InvalidServiceName => "invalid_service_name",
            Self::InvalidMetricName => "invalid_metric_name",
            Self::NonFiniteValue => "non_finite_value",
            Self::TooOld => "too_old",
            Self::TooFarInFuture => "too_far_in_future",
            Self::UnknownService => "unknown_service",
            Self::MackerelRejected => "mackerel_rejected",
            Self::MackerelForbidden => "mackerel_forbidden",
            Self::MackerelRedirected => "mackerel_redirected",
            Self::ValueTooLarge => "value_too_large",
            Self::InvalidSourceTimestamp => "invalid_source_timestamp",
            Self::UnsupportedEvent => "unsupported_event",
            Self::UnknownEventState => "unknown_event_state",
            Self::EventNotCovered => "event_not_covered",
            Self::InvalidEvent => "invalid_event",
        }
    }

    /// Parses a code back (for CLI filters); `None` for an unknown code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }

    /// Whether redriving the message unchanged can ever succeed: only when the
    /// cause lies outside the message (a missing service, a refused key, an
    /// event no service mapping covered yet, a state this consumer version does
    /// not map yet).
    pub fn is_redrivable(self) -> bool {
        matches!(
            self,
            Self::UnknownService
                | Self::MackerelForbidden
                | Self::MackerelRejected
                | Self::MackerelRedirected
                | Self::EventNotCovered
                | Self::UnknownEventState
        )
    }
}

impl fmt::Display for SetAsideReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A message that cannot be posted, with the reason code and a sentence for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: SetAsideReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: SetAsideReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Rejection {}
