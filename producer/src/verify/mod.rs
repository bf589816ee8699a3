//! `verify`: after a flood, read back what reached Mackerel (each series once
//! over the run's time range) and what the consumer parked in the DLQ, compare
//! both with the manifest, and exit non-zero when anything is missing.
//! Optionally waits for the source queue to drain first.

pub mod compare;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use sfn_mackerel_message::status::is_status_series;
use sfn_mackerel_message::timestamp::format_epoch;
use sfn_mackerel_message::MergeRule;
use tokio::time::Instant;

use crate::aws::Sqs;
use crate::cli::VerifyArgs;
use crate::dlq::scan;
use crate::error::{exit, CliError};
use crate::interrupt::Interrupt;
use crate::load_shape::tag_of;
use crate::mackerel_read::MackerelReader;
use crate::manifest::{self, Kind};
use crate::output::{self, Outcome, Report, Table};
use crate::queue::{hand_back, queue_info, Depth};
use compare::{
    check_parked, check_points, expectations, unexpectedly_parked, windows, Expectation,
    ParkedCheck, ParkedVerdict, PointCheck, ReadSeries, Verdict,
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

    // The DLQ: find this run's messages by their tag.
    let mut parked_found: HashMap<u64, Vec<String>> = HashMap::new();
    let mut parked_events: BTreeMap<String, usize> = BTreeMap::new();
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
            if let Some(event) = &message.event {
                *parked_events.entry(event.kind.clone()).or_default() += 1;
            }
            if let Some((id, seq)) = tag_of(&message.body) {
                if id == manifest.header.load_test_id {
                    parked_found
                        .entry(seq)
                        .or_default()
                        .push(message.reason.code().to_owned());
                }
            }
        }
    }
    let checking_dlq = args.dlq_url.is_some() && !args.skip_dlq;
    let dlq = checking_dlq.then_some(DlqFindings {
        looked_at: dlq_looked_at,
        complete: dlq_complete,
        incomplete_because: dlq_incomplete_because,
        found: parked_found,
        events: parked_events,
    });
    let report = VerifyReport::of(&manifest, args, drained, reads.len(), &expected, &read, dlq);
    Ok(Outcome::of(&report))
}

/// What was read of the DLQ: this run's messages found there, by sequence number.
#[derive(Debug, Clone, Default)]
pub struct DlqFindings {
    pub looked_at: usize,
    pub complete: bool,
    pub incomplete_because: Option<String>,
    /// The reason codes of this run's messages found in the DLQ, per `seq`.
    pub found: HashMap<u64, Vec<String>>,
    /// EventBridge events in the DLQ (never part of a run), per kind.
    pub events: BTreeMap<String, usize>,
}

/// How many messages the manifest holds and how many of them were sent.
#[derive(Debug, Clone, Serialize)]
pub struct MessageCounts {
    pub in_manifest: usize,
    pub sent: usize,
    #[serde(skip)]
    pub valid: usize,
    #[serde(skip)]
    pub malformed: usize,
    #[serde(skip)]
    pub too_old: usize,
}

/// Whether the queue drained before the check.
#[derive(Debug, Clone, Serialize)]
pub struct DrainFinding {
    pub drained: bool,
    pub depth: Depth,
}

/// What Mackerel holds against what it should.
#[derive(Debug, Clone, Serialize)]
pub struct MackerelFindings {
    pub reads: usize,
    pub expected_points: usize,
    pub found: usize,
    pub overwritten: usize,
    /// Of those, minutes of a job's status (`<job>.failed`), which the consumer
    /// merges across batches: only two consumers racing on one minute leave one.
    pub overwritten_statuses: usize,
    pub mismatched: usize,
    pub missing: usize,
    /// The first `--show` points that are not found as expected.
    pub problems: Vec<PointCheck>,
    #[serde(skip)]
    pub all_problems: Vec<PointCheck>,
}

/// What the DLQ holds against what it should.
#[derive(Debug, Clone, Serialize)]
pub struct DlqReport {
    pub read: usize,
    pub complete: bool,
    pub incomplete_because: Option<String>,
    pub unseen: usize,
    pub expected: usize,
    pub found: usize,
    pub wrong_reason: usize,
    pub missing: usize,
    /// EventBridge events found in the DLQ, per kind: not this run's, but an
    /// operator reading the DLQ should know they are there (`dlq peek`).
    pub events: BTreeMap<String, usize>,
    pub problems: Vec<ParkedCheck>,
    #[serde(skip)]
    pub all_problems: Vec<ParkedCheck>,
}

/// What `verify` found, for people and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub command: &'static str,
    pub ok: bool,
    pub load_test_id: String,
    pub merge_rule: MergeRule,
    pub strict: bool,
    pub messages: MessageCounts,
    pub drained: Option<DrainFinding>,
    pub mackerel: MackerelFindings,
    pub dlq: Option<DlqReport>,
    pub valid_messages_in_dlq: usize,
    #[serde(skip)]
    pub wrongly_parked: Vec<(u64, String)>,
    /// Problems proven (not only a DLQ that could not be read through).
    #[serde(skip)]
    pub problems_found: bool,
    #[serde(skip)]
    pub timeout_seconds: u64,
    #[serde(skip)]
    pub show: usize,
}

impl VerifyReport {
    /// Compares what was read with what the manifest expects. Pure.
    pub fn of(
        manifest: &manifest::Manifest,
        args: &VerifyArgs,
        drained: Option<(bool, Depth)>,
        reads: usize,
        expected: &[Expectation],
        read: &ReadSeries,
        dlq: Option<DlqFindings>,
    ) -> Self {
        let sent: Vec<&manifest::Entry> = manifest.entries.iter().filter(|e| e.sent).collect();
        let kind_count = |kind: Kind| sent.iter().filter(|e| e.kind == kind).count();
        let checks = check_points(expected, read);
        let count = |f: &dyn Fn(&Verdict) -> bool| checks.iter().filter(|c| f(&c.verdict)).count();
        let overwritten = count(&|v| matches!(v, Verdict::Superseded { .. }));
        let overwritten_statuses = checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Superseded { .. }))
            .filter(|c| is_status_series(&c.expectation.name))
            .count();
        let all_point_problems: Vec<PointCheck> = checks
            .iter()
            .filter(|c| match c.verdict {
                Verdict::Found => false,
                Verdict::Superseded { .. } => args.strict,
                _ => true,
            })
            .cloned()
            .collect();
        let mackerel = MackerelFindings {
            reads,
            expected_points: expected.len(),
            found: count(&|v| matches!(v, Verdict::Found)),
            overwritten,
            overwritten_statuses,
            mismatched: count(&|v| matches!(v, Verdict::Mismatch { .. })),
            missing: count(&|v| matches!(v, Verdict::Missing { .. })),
            problems: checks
                .iter()
                .filter(|c| c.verdict != Verdict::Found)
                .take(args.show)
                .cloned()
                .collect(),
            all_problems: all_point_problems,
        };
        let found_in_dlq = dlq.as_ref().map(|d| d.found.clone()).unwrap_or_default();
        let wrongly_parked = unexpectedly_parked(&manifest.entries, &found_in_dlq);
        let dlq = dlq.map(|findings| {
            let checks = check_parked(&manifest.entries, &findings.found, findings.complete);
            let count = |f: &dyn Fn(&ParkedVerdict) -> bool| {
                checks.iter().filter(|c| f(&c.verdict)).count()
            };
            let problems: Vec<ParkedCheck> = checks
                .iter()
                .filter(|c| c.verdict != ParkedVerdict::Found)
                .cloned()
                .collect();
            DlqReport {
                read: findings.looked_at,
                complete: findings.complete,
                incomplete_because: findings.incomplete_because,
                unseen: count(&|v| *v == ParkedVerdict::Unseen),
                expected: checks.len(),
                found: count(&|v| *v == ParkedVerdict::Found),
                wrong_reason: count(&|v| matches!(v, ParkedVerdict::WrongReason { .. })),
                missing: count(&|v| *v == ParkedVerdict::Missing),
                events: findings.events,
                problems: problems.iter().take(args.show).cloned().collect(),
                all_problems: problems,
            }
        });
        let not_drained = drained.is_some_and(|(ok, _)| !ok);
        let problems_found = mackerel.missing > 0
            || mackerel.mismatched > 0
            || (args.strict && overwritten > 0)
            || dlq
                .as_ref()
                .is_some_and(|d| d.wrong_reason > 0 || d.missing > 0)
            || !wrongly_parked.is_empty()
            || not_drained;
        // Unseen is not missing, but neither is it found: verify cannot say OK.
        let unseen = dlq.as_ref().map_or(0, |d| d.unseen);
        Self {
            command: "verify",
            ok: !problems_found && unseen == 0,
            load_test_id: manifest.header.load_test_id.clone(),
            merge_rule: args.merge_rule,
            strict: args.strict,
            messages: MessageCounts {
                in_manifest: manifest.entries.len(),
                sent: sent.len(),
                valid: kind_count(Kind::Valid),
                malformed: kind_count(Kind::Malformed),
                too_old: kind_count(Kind::TooOld),
            },
            drained: drained.map(|(drained, depth)| DrainFinding { drained, depth }),
            mackerel,
            valid_messages_in_dlq: wrongly_parked.len(),
            dlq,
            wrongly_parked,
            problems_found,
            timeout_seconds: args.timeout,
            show: args.show,
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.messages;
        writeln!(
            f,
            "load test {} ({} messages in the manifest, {} sent: {} valid, {} malformed, {} too old)",
            self.load_test_id, m.in_manifest, m.sent, m.valid, m.malformed, m.too_old,
        )?;
        if let Some(drain) = &self.drained {
            if drain.drained {
                writeln!(f, "the queue drained")?;
            } else {
                writeln!(
                    f,
                    "the queue did NOT drain within {}s: {} messages left (is the consumer running?)",
                    self.timeout_seconds,
                    drain.depth.total()
                )?;
            }
        }
        let points = &self.mackerel;
        let mut table = Table::new(&["check", "expected", "ok", "overwritten", "wrong", "missing"]);
        table.row(vec![
            format!("Mackerel points ({} reads)", points.reads),
            points.expected_points.to_string(),
            points.found.to_string(),
            points.overwritten.to_string(),
            points.mismatched.to_string(),
            points.missing.to_string(),
        ]);
        if let Some(dlq) = &self.dlq {
            table.row(vec![
                format!("DLQ messages ({} read)", dlq.read),
                dlq.expected.to_string(),
                dlq.found.to_string(),
                "-".to_owned(),
                dlq.wrong_reason.to_string(),
                dlq.missing.to_string(),
            ]);
        }
        writeln!(f, "{}", table.render())?;
        if points.overwritten > 0 {
            writeln!(
                f,
                "{} minutes hold another value of the run than the {:?}-merged one ({} of them job statuses): consumer batches that posted the same minute overwrote each other (Mackerel keeps the last write; a status minute only when two consumers raced on it){}",
                points.overwritten,
                self.merge_rule,
                points.overwritten_statuses,
                if self.strict { "; counted as failures (--strict)" } else { "" }
            )?;
        }
        if let Some(dlq) = self.dlq.as_ref().filter(|d| !d.events.is_empty()) {
            let kinds: Vec<String> = dlq
                .events
                .iter()
                .map(|(kind, count)| format!("{count} {}", crate::output::shorten(kind, 60)))
                .collect();
            writeln!(
                f,
                "the DLQ also holds EventBridge events, not of this run: {}; `dlq peek` shows why",
                kinds.join(", ")
            )?;
        }
        if let Some((seq, reasons)) = self.wrongly_parked.first() {
            writeln!(
                f,
                "{} valid messages are in the DLQ (first: seq {seq} with reason {reasons}); `dlq peek` shows why",
                self.wrongly_parked.len()
            )?;
        }
        if let Some(dlq) = self.dlq.as_ref().filter(|d| !d.complete) {
            writeln!(
                f,
                "the DLQ was not read through ({}): {} messages expected there were not seen, which proves neither that they are there nor that they are missing; run verify again",
                dlq.incomplete_because.as_deref().unwrap_or("partial read"),
                dlq.unseen
            )?;
        }
        let point_lines: Vec<String> = points.all_problems.iter().map(point_problem).collect();
        let parked_lines: Vec<String> = self
            .dlq
            .iter()
            .flat_map(|d| d.all_problems.iter().map(parked_problem))
            .collect();
        for (title, lines) in [("Mackerel", &point_lines), ("DLQ", &parked_lines)] {
            if !lines.is_empty() {
                let shown = lines.len().min(self.show);
                writeln!(
                    f,
                    "{title} problems ({} in all, showing {shown}):\n{}",
                    lines.len(),
                    lines[..shown].join("\n")
                )?;
            }
        }
        f.write_str(if self.problems_found {
            "RESULT: FAILED"
        } else if !self.ok {
            "RESULT: INCOMPLETE, the DLQ could not be read through"
        } else {
            "RESULT: OK, everything the manifest expects was found"
        })
    }
}

impl Report for VerifyReport {
    fn exit_code(&self) -> u8 {
        if self.ok {
            exit::OK
        } else {
            exit::FINDINGS
        }
    }
}

fn point_problem(check: &PointCheck) -> String {
    let e = &check.expectation;
    let what = match &check.verdict {
        Verdict::Missing {
            series_exists: false,
        } => "missing (Mackerel has no such service or metric)".to_owned(),
        Verdict::Missing { .. } => "missing".to_owned(),
        Verdict::Mismatch { found } | Verdict::Superseded { found } => format!("found {found}"),
        Verdict::Found => String::new(),
    };
    format!(
        "  {}/{} at {}: expected {}, {what}",
        e.service,
        e.name,
        format_epoch(e.minute),
        e.expected
    )
}

fn parked_problem(check: &ParkedCheck) -> String {
    match &check.verdict {
        ParkedVerdict::WrongReason { found } => format!(
            "  DLQ seq {}: expected reason {}, found {found}",
            check.seq, check.expected_reason
        ),
        ParkedVerdict::Unseen => format!(
            "  DLQ seq {} ({}): not seen (the DLQ was read only in part)",
            check.seq,
            check.kind.name()
        ),
        _ => format!(
            "  DLQ seq {} ({}): not in the DLQ (expected reason {})",
            check.seq,
            check.kind.name(),
            check.expected_reason
        ),
    }
}
