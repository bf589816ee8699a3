//! `dlq peek`: what is in the DLQ and why, without removing anything: messages
//! are received (hidden), summarised per reason, and handed back at once.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use sfn_mackerel_message::dead_letter::DeadLetterReason;

use crate::aws::Sqs;
use crate::cli::PeekArgs;
use crate::clock::now_seconds;
use crate::dlq::parked::{group_by_reason, Parked, ReasonGroup};
use crate::dlq::{scan, Scan};
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::output::{self, age_text, Outcome, Report, Table};
use crate::queue::{hand_back, queue_info, queue_name, Depth};

/// What `dlq peek` found.
#[derive(Debug, Clone, Serialize)]
pub struct PeekReport {
    pub command: &'static str,
    pub queue_url: String,
    pub approximate_depth: Depth,
    pub looked_at: usize,
    pub complete: bool,
    pub incomplete_because: Option<String>,
    /// Messages matching `--reason` (all when no filter is given).
    pub shown: usize,
    pub older_than_24h: usize,
    pub reasons: Vec<ReasonGroup>,
    #[serde(skip)]
    pub filter: Vec<DeadLetterReason>,
}

impl PeekReport {
    /// Summarises what a scan saw. Pure: `now` is epoch seconds.
    pub fn of(
        queue_url: &str,
        depth: Depth,
        scanned: Scan,
        filter: &[DeadLetterReason],
        samples: usize,
        now: i64,
    ) -> Self {
        let looked_at = scanned.messages.len();
        let messages: Vec<Parked> = scanned
            .messages
            .into_iter()
            .filter(|m| filter.is_empty() || filter.contains(&m.reason))
            .collect();
        let reasons = group_by_reason(&messages, now, samples);
        Self {
            command: "dlq peek",
            queue_url: queue_url.to_owned(),
            approximate_depth: depth,
            looked_at,
            complete: scanned.complete,
            incomplete_because: scanned.incomplete_because,
            shown: messages.len(),
            older_than_24h: reasons.iter().map(|g| g.too_old_for_mackerel).sum(),
            reasons,
            filter: filter.to_vec(),
        }
    }

    /// The warning an operator must not miss, if any.
    pub fn warning(&self) -> Option<String> {
        (self.older_than_24h > 0).then(|| {
            format!(
                "{} messages hold values older than 24 h: Mackerel would silently drop them, so redriving them cannot help",
                self.older_than_24h
            )
        })
    }
}

impl fmt::Display for PeekReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let depth = &self.approximate_depth;
        writeln!(
            f,
            "DLQ {}: about {} messages ({} visible, {} in flight); looked at {}{}",
            queue_name(&self.queue_url),
            depth.total(),
            depth.visible,
            depth.in_flight,
            self.looked_at,
            match &self.incomplete_because {
                None => String::new(),
                Some(why) => format!(" (not all of it: {why})"),
            }
        )?;
        if self.reasons.is_empty() {
            write!(f, "no messages")?;
            if !self.filter.is_empty() {
                let codes: Vec<&str> = self.filter.iter().map(DeadLetterReason::code).collect();
                write!(f, " with reason {}", codes.join(" or "))?;
            }
            writeln!(f)?;
        } else {
            let mut table = Table::new(&[
                "reason",
                "count",
                "oldest",
                "newest",
                "values >24h",
                "redrive?",
            ]);
            for group in &self.reasons {
                table.row(vec![
                    group.reason.to_string(),
                    group.count.to_string(),
                    group.oldest_age_seconds.map(age_text).unwrap_or_default(),
                    group.newest_age_seconds.map(age_text).unwrap_or_default(),
                    group.too_old_for_mackerel.to_string(),
                    if group.redrivable {
                        "after fixing the cause".to_owned()
                    } else {
                        "no: fix the sender".to_owned()
                    },
                ]);
            }
            writeln!(f, "{}\n\nsamples:", table.render())?;
            for group in &self.reasons {
                for sample in &group.samples {
                    // Every part comes from the DLQ's bodies and attributes: one
                    // line each, control characters out, cut to a sane length.
                    let what = match &sample.event {
                        Some(event) => {
                            format!("EventBridge event, {}", output::shorten(event, 160))
                        }
                        None => output::shorten(&sample.body, 160),
                    };
                    let detail = sample.detail.as_deref().unwrap_or(
                        "(no detail: moved by the redrive policy after too many receives)",
                    );
                    writeln!(
                        f,
                        "  [{}] {}\n    {}",
                        output::shorten(&group.reason.to_string(), 60),
                        what,
                        output::shorten(detail, 400)
                    )?;
                }
            }
        }
        if let Some(warning) = self.warning() {
            writeln!(f, "\nwarning: {warning}")?;
        }
        write!(
            f,
            "messages were handed back to the DLQ; nothing was removed"
        )
    }
}

impl Report for PeekReport {}

/// Runs `dlq peek`.
pub async fn run(
    sqs: &Sqs,
    args: &PeekArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, CliError> {
    if !(1..=43_200).contains(&args.visibility_timeout) {
        return Err(CliError::usage(
            "--visibility-timeout must be from 1 to 43200 seconds",
        ));
    }
    let info = queue_info(sqs, &args.dlq_url).await?;
    let bar = output::progress_bar(
        Some(args.max.min(info.depth.visible.max(1) as usize) as u64),
        show_progress,
        "{spinner} reading the DLQ {pos}/{len}",
    );
    let scanned = scan(
        sqs,
        &args.dlq_url,
        args.max,
        args.visibility_timeout,
        Duration::from_secs(120),
        interrupt,
        |n| bar.set_position(n as u64),
    )
    .await;
    bar.finish_and_clear();
    let scanned = scanned?;
    let not_returned = hand_back(sqs, &args.dlq_url, &scanned.receipt_handles).await;
    if not_returned > 0 {
        output::warn(&format!(
            "{not_returned} messages could not be handed back at once; they reappear after {}s",
            args.visibility_timeout
        ));
    }
    let report = PeekReport::of(
        &args.dlq_url,
        info.depth,
        scanned,
        &args.reason,
        args.samples,
        now_seconds(),
    );
    if let Some(warning) = report.warning() {
        output::warn(&warning);
    }
    Ok(Outcome::of(&report))
}
