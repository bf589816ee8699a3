//! `dlq purge`: deletes every message in the DLQ, only when the operator
//! repeats the queue's name and only when some queue uses it as its DLQ, so a
//! pasted command cannot empty the wrong queue (the live results queue, say).

use std::fmt;

use serde::Serialize;

use crate::aws::{sqs_error, Sqs};
use crate::cli::PurgeArgs;
use crate::error::CliError;
use crate::output::{Outcome, Report};
use crate::queue::{dead_letter_sources, queue_info, queue_name};

/// What `dlq purge` did, or would do.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub command: &'static str,
    pub dry_run: bool,
    pub queue_url: String,
    pub approximate_messages: u64,
}

impl fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = queue_name(&self.queue_url);
        let count = self.approximate_messages;
        if self.dry_run {
            write!(
                f,
                "dry run: purging {name} would delete about {count} messages"
            )
        } else {
            write!(
                f,
                "purged {name}: about {count} messages deleted (SQS may take up to 60 s to finish)"
            )
        }
    }
}

impl Report for PurgeReport {}

/// Runs `dlq purge`.
pub async fn run(sqs: &Sqs, args: &PurgeArgs) -> Result<Outcome, CliError> {
    let name = queue_name(&args.dlq_url).to_owned();
    let info = queue_info(sqs, &args.dlq_url).await?;
    let count = info.depth.total();
    let report = PurgeReport {
        command: "dlq purge",
        dry_run: args.dry_run,
        queue_url: args.dlq_url.clone(),
        approximate_messages: count,
    };
    if args.dry_run {
        return Ok(Outcome::of(&report));
    }
    if !args.allow_non_dlq && dead_letter_sources(sqs, &args.dlq_url).await?.is_empty() {
        return Err(CliError::usage(format!(
            "no queue's redrive policy names {name} as its dead-letter queue, so it may be a live queue (the results queue itself?); nothing was deleted. Check --dlq-url, or pass --allow-non-dlq if it really is a DLQ"
        )));
    }
    match args.confirm.as_deref() {
        Some(confirm) if confirm == name => {}
        Some(other) => {
            return Err(CliError::usage(format!(
                "--confirm {other:?} does not match the queue's name {name:?}; nothing was deleted"
            )))
        }
        None => {
            return Err(CliError::usage(format!(
                "purging deletes about {count} messages for good: repeat the queue's name to confirm, --confirm {name} (try `dlq peek` first)"
            )))
        }
    }
    sqs.client
        .purge_queue()
        .queue_url(&args.dlq_url)
        .send()
        .await
        .map_err(|e| {
            let purge_in_progress = e
                .as_service_error()
                .is_some_and(|s| s.is_purge_queue_in_progress());
            if purge_in_progress {
                CliError::Unreachable(format!(
                    "{name} was purged less than 60 seconds ago and SQS allows one purge a minute; wait and run it again"
                ))
            } else {
                sqs_error(sqs, e, "purging the queue", &args.dlq_url)
            }
        })?;
    Ok(Outcome::of(&report))
}
