//! `dlq peek`: what is in the DLQ and why, without removing anything: messages
//! are received (hidden), summarised per reason, and handed back at once.

use std::time::Duration;

use serde_json::json;

use crate::aws::Sqs;
use crate::cli::PeekArgs;
use crate::dlq::parked::{check_reasons, group_by_reason};
use crate::dlq::scan;
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::output::{self, age_text, Outcome, Table};
use crate::queue::{hand_back, queue_info, queue_name};
use crate::send::now_seconds;

/// Runs `dlq peek`.
pub async fn run(
    sqs: &Sqs,
    args: &PeekArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, CliError> {
    check_reasons(&args.reason).map_err(CliError::Usage)?;
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

    let now = now_seconds();
    let looked_at = scanned.messages.len();
    let messages: Vec<_> = scanned
        .messages
        .into_iter()
        .filter(|m| args.reason.is_empty() || args.reason.contains(&m.reason))
        .collect();
    let groups = group_by_reason(&messages, now, args.samples);
    let too_old: usize = groups.iter().map(|g| g.too_old_for_mackerel).sum();

    let name = queue_name(&args.dlq_url);
    let mut human = format!(
        "DLQ {name}: about {} messages ({} visible, {} in flight); looked at {looked_at}{}\n",
        info.depth.total(),
        info.depth.visible,
        info.depth.in_flight,
        match &scanned.incomplete_because {
            None => String::new(),
            Some(why) => format!(" (not all of it: {why})"),
        }
    );
    if groups.is_empty() {
        human.push_str("no messages");
        if !args.reason.is_empty() {
            human.push_str(&format!(" with reason {}", args.reason.join(" or ")));
        }
        human.push('\n');
    } else {
        let mut table = Table::new(&[
            "reason",
            "count",
            "oldest",
            "newest",
            "values >24h",
            "redrive?",
        ]);
        for group in &groups {
            table.row(vec![
                group.reason.clone(),
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
        human.push_str(&table.render());
        human.push_str("\n\nsamples:\n");
        for group in &groups {
            for sample in &group.samples {
                human.push_str(&format!(
                    "  [{}] {}\n    {}\n",
                    group.reason,
                    output::shorten(&sample.body, 160),
                    sample.detail.as_deref().unwrap_or(
                        "(no detail: moved by the redrive policy after too many receives)"
                    )
                ));
            }
        }
    }
    if too_old > 0 {
        let warning = format!(
            "{too_old} messages hold values older than 24 h: Mackerel would silently drop them, so redriving them cannot help"
        );
        output::warn(&warning);
        human.push_str(&format!("\nwarning: {warning}\n"));
    }
    human.push_str("messages were handed back to the DLQ; nothing was removed");
    Ok(Outcome::new(
        json!({
            "command": "dlq peek",
            "queue_url": args.dlq_url,
            "approximate_depth": info.depth,
            "looked_at": looked_at,
            "complete": scanned.complete,
            "incomplete_because": scanned.incomplete_because,
            "shown": messages.len(),
            "older_than_24h": too_old,
            "reasons": groups,
        }),
        human,
    ))
}
