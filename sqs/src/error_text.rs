//! One readable line for an AWS SDK error (or any error): its message and its
//! causes, joined by ": ". The SDK's `DisplayErrorContext` appends the whole
//! `Debug` tree (`DispatchFailure(DispatchFailure { source: ConnectorError {
//! … } })`), which tells an operator nothing the causes do not; that dump is
//! for debug logs (see [`call_failed`]).

use std::error::Error;

/// `error`'s message and each cause's, in order, skipping a cause whose text
/// is already the line's last part (wrappers often repeat their source).
pub fn cause_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    // Bounded: a cause chain is a few levels; a cycle would be a bug elsewhere.
    for _ in 0..32 {
        let Some(cause) = source else { break };
        let text = cause.to_string();
        let repeated = line == text || line.ends_with(&format!(": {text}"));
        if !text.is_empty() && !repeated {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// "`call` failed: " and the cause line; the error's whole `Debug` tree goes
/// to a debug-level log line (`-vv`, `RUST_LOG=debug`) for whoever needs it.
pub fn call_failed(call: &str, error: &(impl Error + 'static)) -> String {
    tracing::debug!(call, error = ?error, "the SDK's whole error");
    format!("{call} failed: {}", cause_line(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn the_causes_follow_the_message_without_any_debug_dump() {
        let error = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            cause_line(&error),
            "dispatch failure: io error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn a_cause_that_repeats_its_wrapper_is_said_once() {
        let error = Layer("timed out", Some(Box::new(Layer("timed out", None))));
        assert_eq!(cause_line(&error), "timed out");
        let wrapped = Layer(
            "configuration: no key",
            Some(Box::new(Layer("no key", None))),
        );
        assert_eq!(cause_line(&wrapped), "configuration: no key");
    }

    #[test]
    fn a_short_cause_that_only_ends_like_the_line_is_kept() {
        let error = Layer("operation timeout", Some(Box::new(Layer("timeout", None))));
        assert_eq!(cause_line(&error), "operation timeout: timeout");
    }
}
