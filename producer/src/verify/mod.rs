//! `verify`: after a flood, read back what reached Mackerel (each series once
//! over the run's time range) and what the consumer parked in the DLQ, compare
//! both with the manifest, and exit non-zero when anything is missing.
//! Optionally waits for the source queue to drain first.

pub mod compare;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sfn_mackerel_message::timestamp::format_epoch;
use tokio::time::Instant;

use crate::aws::Sqs;
use crate::cli::VerifyArgs;
use crate::dlq::scan;
use crate::error::{exit, CliError};
use crate::interrupt::Interrupt;
use crate::load_shape::tag_of;
use crate::mackerel_read::MackerelReader;
use crate::manifest::{self, Kind};
use crate::output::{self, Outcome, Table};
use crate::queue::{hand_back, queue_info, Depth};
use compare::{
    check_parked, check_points, expectations, unexpectedly_parked, windows, ParkedVerdict,
    ReadSeries, Verdict,
};

/// Series read at the same time.
const READ_CONCURRENCY: usize = 4;
/// How often the queue depth is read while waiting for the drain.
const DRAIN_POLL: Duration = Duration::from_secs(2);

/// Waits until the queue holds no message (visible, in flight or delayed), at most `timeout`.
pub async fn wait_drained(
    sqs: &Sqs,
    url: &str,
    timeout: Duration,
    print: bool,
    interrupt: &Interrupt,
) -> Result<(bool, Depth), CliError> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<Depth> = None;
    loop {
        let depth = queue_info(sqs, url).await?.depth;
        if print && last != Some(depth) {
            output::note(&format!(
                "queue depth: {} visible, {} in flight, {} delayed",
                depth.visible, depth.in_flight, depth.delayed
            ));
        }
        last = Some(depth);
        if depth.total() == 0 {
            return Ok((true, depth));
        }
        if Instant::now() + DRAIN_POLL > deadline || interrupt.is_set() {
            return Ok((false, depth));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Runs `verify`.
pub async fn run(
    sqs: &Sqs,
    args: &VerifyArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<Outcome, CliError> {
    let manifest = manifest::read(&args.manifest)?;
    let Some(key) = args.mackerel.api_key() else {
        return Err(CliError::usage(
            "no Mackerel API key: set MACKEREL_API_KEY (a read-only key is enough; there is no flag, so the key stays out of the shell's history)",
        ));
    };
    let reader = MackerelReader::new(&args.mackerel.mackerel_api_base, &key)?;
    let sent: Vec<&manifest::Entry> = manifest.entries.iter().filter(|e| e.sent).collect();
    let expect_parked = sent.iter().filter(|e| e.expected_reason.is_some()).count();
    if expect_parked > 0 && args.dlq_url.is_none() && !args.skip_dlq {
        return Err(CliError::usage(format!(
            "the manifest has {expect_parked} messages the consumer should have parked: pass --dlq-url to check them, or --skip-dlq"
        )));
    }

    let drained = match (&args.queue_url, args.wait_drained) {
        (Some(url), true) => Some(
            wait_drained(
                sqs,
                url,
                Duration::from_secs(args.timeout),
                show_progress,
                interrupt,
            )
            .await?,
        ),
        _ => None,
    };

    // Mackerel: each series once over the run's range.
    let expected = expectations(&manifest.entries, args.merge_rule);
    let reads = windows(&expected);
    let bar = output::progress_bar(
        Some(reads.len() as u64),
        show_progress,
        "{spinner} reading Mackerel {pos}/{len} series windows",
    );
    let reader_ref = &reader;
    let mut answers = futures::stream::iter(reads.iter())
        .map(|w| async move {
            (
                w,
                reader_ref.series(&w.service, &w.name, w.from, w.to).await,
            )
        })
        .buffer_unordered(READ_CONCURRENCY);
    let mut read: ReadSeries = HashMap::new();
    while let Some((window, answer)) = answers.next().await {
        bar.inc(1);
        let points = answer?;
        let slot = read
            .entry((window.service.clone(), window.name.clone()))
            .or_insert(None);
        if let Some(points) = points {
            slot.get_or_insert_with(Vec::new).extend(points);
        }
    }
    drop(answers);
    bar.finish_and_clear();
    let checks = check_points(&expected, &read);

    // The DLQ: find this run's messages by their tag.
    let mut parked_found: HashMap<u64, Vec<String>> = HashMap::new();
    let mut dlq_complete = true;
    let mut dlq_incomplete_because: Option<String> = None;
    let mut dlq_looked_at = 0;
    if let (Some(dlq_url), false) = (&args.dlq_url, args.skip_dlq) {
        let depth = queue_info(sqs, dlq_url).await?.depth;
        let bar = output::progress_bar(
            Some(depth.visible.max(1)),
            show_progress,
            "{spinner} reading the DLQ {pos}/{len}",
        );
        let scanned = scan(
            sqs,
            dlq_url,
            (depth.total() as usize).saturating_mul(2).max(1_000),
            300,
            Duration::from_secs(600),
            interrupt,
            |n| bar.set_position(n as u64),
        )
        .await;
        bar.finish_and_clear();
        let scanned = scanned?;
        hand_back(sqs, dlq_url, &scanned.receipt_handles).await;
        dlq_complete = scanned.complete;
        dlq_incomplete_because = scanned.incomplete_because.clone();
        dlq_looked_at = scanned.messages.len();
        for message in &scanned.messages {
            if let Some((id, seq)) = tag_of(&message.body) {
                if id == manifest.header.load_test_id {
                    parked_found
                        .entry(seq)
                        .or_default()
                        .push(message.reason.clone());
                }
            }
        }
    }
    let checking_dlq = args.dlq_url.is_some() && !args.skip_dlq;
    let parked_checks = if checking_dlq {
        check_parked(&manifest.entries, &parked_found, dlq_complete)
    } else {
        Vec::new()
    };
    let wrongly_parked = unexpectedly_parked(&manifest.entries, &parked_found);

    let count = |f: &dyn Fn(&Verdict) -> bool| checks.iter().filter(|c| f(&c.verdict)).count();
    let found = count(&|v| matches!(v, Verdict::Found));
    let superseded = count(&|v| matches!(v, Verdict::Superseded { .. }));
    let mismatched = count(&|v| matches!(v, Verdict::Mismatch { .. }));
    let missing = count(&|v| matches!(v, Verdict::Missing { .. }));
    let parked_ok = parked_checks
        .iter()
        .filter(|c| c.verdict == ParkedVerdict::Found)
        .count();
    let parked_wrong = parked_checks
        .iter()
        .filter(|c| matches!(c.verdict, ParkedVerdict::WrongReason { .. }))
        .count();
    let parked_missing = parked_checks
        .iter()
        .filter(|c| c.verdict == ParkedVerdict::Missing)
        .count();
    let parked_unseen = parked_checks
        .iter()
        .filter(|c| c.verdict == ParkedVerdict::Unseen)
        .count();
    let not_drained = drained.is_some_and(|(ok, _)| !ok);
    let problems_found = missing > 0
        || mismatched > 0
        || (args.strict && superseded > 0)
        || parked_wrong > 0
        || parked_missing > 0
        || !wrongly_parked.is_empty()
        || not_drained;
    // Unseen is not missing, but neither is it found: verify cannot say OK.
    let failed = problems_found || parked_unseen > 0;

    let kind_count = |kind: Kind| sent.iter().filter(|e| e.kind == kind).count();
    let mut human = format!(
        "load test {} ({} messages in the manifest, {} sent: {} valid, {} malformed, {} too old)\n",
        manifest.header.load_test_id,
        manifest.entries.len(),
        sent.len(),
        kind_count(Kind::Valid),
        kind_count(Kind::Malformed),
        kind_count(Kind::TooOld),
    );
    if let Some((ok, depth)) = drained {
        human.push_str(&if ok {
            "the queue drained\n".to_owned()
        } else {
            format!(
                "the queue did NOT drain within {}s: {} messages left (is the consumer running?)\n",
                args.timeout,
                depth.total()
            )
        });
    }
    let mut table = Table::new(&["check", "expected", "ok", "overwritten", "wrong", "missing"]);
    table.row(vec![
        format!("Mackerel points ({} reads)", reads.len()),
        expected.len().to_string(),
        found.to_string(),
        superseded.to_string(),
        mismatched.to_string(),
        missing.to_string(),
    ]);
    if checking_dlq {
        table.row(vec![
            format!("DLQ messages ({dlq_looked_at} read)"),
            parked_checks.len().to_string(),
            parked_ok.to_string(),
            "-".to_owned(),
            parked_wrong.to_string(),
            parked_missing.to_string(),
        ]);
    }
    human.push_str(&table.render());
    human.push('\n');
    if superseded > 0 {
        human.push_str(&format!(
            "{superseded} minutes hold another value of the run than the {:?}-merged one: consumer batches that posted the same minute overwrote each other (Mackerel keeps the last write){}\n",
            args.merge_rule,
            if args.strict { "; counted as failures (--strict)" } else { "" }
        ));
    }
    if !wrongly_parked.is_empty() {
        human.push_str(&format!(
            "{} valid messages are in the DLQ (first: seq {} with reason {}); `dlq peek` shows why\n",
            wrongly_parked.len(),
            wrongly_parked[0].0,
            wrongly_parked[0].1
        ));
    }
    if checking_dlq && !dlq_complete {
        human.push_str(&format!(
            "the DLQ was not read through ({}): {parked_unseen} messages expected there were not seen, which proves neither that they are there nor that they are missing; run verify again\n",
            dlq_incomplete_because.as_deref().unwrap_or("partial read")
        ));
    }
    let point_problems: Vec<String> = checks
        .iter()
        .filter(|c| match c.verdict {
            Verdict::Found => false,
            Verdict::Superseded { .. } => args.strict,
            _ => true,
        })
        .map(|c| {
            let e = &c.expectation;
            let what = match &c.verdict {
                Verdict::Missing {
                    series_exists: false,
                } => "missing (Mackerel has no such service or metric)".to_owned(),
                Verdict::Missing { .. } => "missing".to_owned(),
                Verdict::Mismatch { found } | Verdict::Superseded { found } => {
                    format!("found {found}")
                }
                Verdict::Found => String::new(),
            };
            format!(
                "  {}/{} at {}: expected {}, {what}",
                e.service,
                e.name,
                format_epoch(e.minute),
                e.expected
            )
        })
        .collect();
    let parked_problems: Vec<String> = parked_checks
        .iter()
        .filter(|c| c.verdict != ParkedVerdict::Found)
        .map(|c| match &c.verdict {
            ParkedVerdict::WrongReason { found } => format!(
                "  DLQ seq {}: expected reason {}, found {found}",
                c.seq, c.expected_reason
            ),
            ParkedVerdict::Unseen => format!(
                "  DLQ seq {} ({}): not seen (the DLQ was read only in part)",
                c.seq,
                c.kind.name()
            ),
            _ => format!(
                "  DLQ seq {} ({}): not in the DLQ (expected reason {})",
                c.seq,
                c.kind.name(),
                c.expected_reason
            ),
        })
        .collect();
    for (title, problems) in [("Mackerel", &point_problems), ("DLQ", &parked_problems)] {
        if !problems.is_empty() {
            human.push_str(&format!(
                "{title} problems ({} in all, showing {}):\n{}\n",
                problems.len(),
                problems.len().min(args.show),
                problems[..problems.len().min(args.show)].join("\n")
            ));
        }
    }
    human.push_str(if problems_found {
        "RESULT: FAILED"
    } else if failed {
        "RESULT: INCOMPLETE, the DLQ could not be read through"
    } else {
        "RESULT: OK, everything the manifest expects was found"
    });

    let listed: Vec<_> = checks
        .iter()
        .filter(|c| c.verdict != Verdict::Found)
        .take(args.show)
        .collect();
    let parked_listed: Vec<_> = parked_checks
        .iter()
        .filter(|c| c.verdict != ParkedVerdict::Found)
        .take(args.show)
        .collect();
    Ok(Outcome::new(
        json!({
            "command": "verify",
            "ok": !failed,
            "load_test_id": manifest.header.load_test_id,
            "merge_rule": args.merge_rule,
            "strict": args.strict,
            "messages": {"in_manifest": manifest.entries.len(), "sent": sent.len()},
            "drained": drained.map(|(ok, depth)| json!({"drained": ok, "depth": depth})),
            "mackerel": {
                "reads": reads.len(),
                "expected_points": expected.len(),
                "found": found,
                "overwritten": superseded,
                "mismatched": mismatched,
                "missing": missing,
                "problems": listed,
            },
            "dlq": checking_dlq.then(|| json!({
                "read": dlq_looked_at,
                "complete": dlq_complete,
                "incomplete_because": dlq_incomplete_because,
                "unseen": parked_unseen,
                "expected": parked_checks.len(),
                "found": parked_ok,
                "wrong_reason": parked_wrong,
                "missing": parked_missing,
                "problems": parked_listed,
            })),
            "valid_messages_in_dlq": wrongly_parked.len(),
        }),
        human,
    )
    .with_exit_code(if failed { exit::FINDINGS } else { exit::OK }))
}
