//! What can go wrong, phrased for the operator, and the exit code each case maps
//! to, so that scripts can tell "the check failed" from "the tool could not run".

/// Exit codes, documented in every command's `--help` and in the README.
pub mod exit {
    /// Everything went as asked.
    pub const OK: u8 = 0;
    /// The check found a problem: values missing or different in Mackerel, parked
    /// messages missing from the DLQ, or the queue did not drain in time.
    pub const FINDINGS: u8 = 1;
    /// Usage or configuration error (bad flag, unreadable manifest or input file).
    pub const USAGE: u8 = 2;
    /// AWS or Mackerel could not be reached, refused the credentials, or the queue does not exist.
    pub const UNAVAILABLE: u8 = 3;
    /// The work ran but part of it failed: some messages could not be sent, moved or deleted.
    pub const PARTIAL: u8 = 4;
}

/// The text appended to every command's help.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  findings: verify found missing or mismatched values, or the queue did not drain in time
  2  usage or configuration error (bad flag, unreadable manifest or input file)
  3  AWS or Mackerel unreachable, credentials refused, or the queue does not exist
  4  partial failure: some messages could not be sent, moved or deleted (see the report)";

/// An error that stops a command, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag, an input file or a manifest is not usable.
    #[error("{0}")]
    Usage(String),
    /// SQS or Mackerel did not answer, or answered with something unusable.
    #[error("{0}")]
    Unreachable(String),
    /// The queue URL names no queue.
    #[error("queue {url} does not exist ({doing}). Check the URL (copy it from `terraform output` or the SQS console), the region and the account")]
    QueueMissing { url: String, doing: String },
    /// AWS or Mackerel refused the request (credentials, permissions, key).
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Unreachable(_) | CliError::QueueMissing { .. } | CliError::Refused(_) => {
                exit::UNAVAILABLE
            }
        }
    }

    /// A usage error from any displayable cause.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }
}
