//! The pure half of `verify`: what Mackerel should hold after a flood (values
//! merged per service, name and minute the way the consumer merges them), which
//! series windows to read, and how what was read compares. No I/O here.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use sfn_mackerel_message::read_windows::read_windows;
use sfn_mackerel_message::status::merge_rule_for;
use sfn_mackerel_message::MergeRule;

use crate::manifest::{Entry, Kind};

/// Mackerel keeps one value per minute, stamped at the minute's start.
pub fn minute_of(time: i64) -> i64 {
    sfn_mackerel_message::timestamp::minute_of(time) * 60
}

pub use sfn_mackerel_message::read_windows::MAX_WINDOW_SECONDS;

/// One point Mackerel should hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    pub service: String,
    pub name: String,
    /// The start of the minute (epoch seconds).
    pub minute: i64,
    /// The merged value.
    pub expected: f64,
    /// Every value of the run that fell into this minute (another consumer batch
    /// may have written any of them last).
    pub candidates: Vec<f64>,
    /// The manifest entries behind it.
    pub seqs: Vec<u64>,
}

/// The points the sent valid messages should have produced, ordered by series
/// and minute, for a consumer with its alerting guarantee on (its default).
pub fn expectations(entries: &[Entry], rule: MergeRule) -> Vec<Expectation> {
    // (service, name, minute) -> (time, seq, value) of every value that fell into it.
    type Minute<'a> = (&'a str, &'a str, i64);
    let mut grouped: BTreeMap<Minute, Vec<(i64, u64, f64)>> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.sent && e.kind == Kind::Valid) {
        for value in &entry.values {
            grouped
                .entry((&entry.service, &value.name, minute_of(value.time)))
                .or_default()
                .push((value.time, entry.seq, value.value));
        }
    }
    grouped
        .into_iter()
        .map(|((service, name, minute), values)| {
            // The consumer merges in arrival order; in a flood, that is seq
            // order. A job's status merges by max, across batches too (the
            // consumer reads what the minute holds before writing it).
            let expected = merge_rule_for(name, rule)
                .merge_all(values.iter().map(|&(time, seq, value)| (time, seq, value)))
                .unwrap_or_default();
            Expectation {
                service: service.to_owned(),
                name: name.to_owned(),
                minute,
                expected,
                candidates: values.iter().map(|v| v.2).collect(),
                seqs: values.iter().map(|v| v.1).collect(),
            }
        })
        .collect()
}

/// One read request: a series and a time range (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesWindow {
    pub service: String,
    pub name: String,
    pub from: i64,
    pub to: i64,
}

/// The reads that cover every expectation: each series once over its range, cut
/// into windows of at most [`MAX_WINDOW_SECONDS`].
pub fn windows(expectations: &[Expectation]) -> Vec<SeriesWindow> {
    let mut ranges: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    for e in expectations {
        let range = ranges
            .entry((&e.service, &e.name))
            .or_insert((e.minute, e.minute));
        range.0 = range.0.min(e.minute);
        range.1 = range.1.max(e.minute);
    }
    let mut out = Vec::new();
    for ((service, name), (first, last)) in ranges {
        for (from, to) in read_windows(first, last + 59) {
            out.push(SeriesWindow {
                service: service.to_owned(),
                name: name.to_owned(),
                from,
                to,
            });
        }
    }
    out
}

/// What was found for one expected point.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The expected value is there.
    Found,
    /// Another value of the run for the same minute is there: a later consumer
    /// batch overwrote the merged one (Mackerel keeps the last write of a minute).
    Superseded { found: f64 },
    /// A value that no message of the run carried for that minute.
    Mismatch { found: f64 },
    /// Nothing at that minute; `series_exists` is false when Mackerel answered 404.
    Missing { series_exists: bool },
}

/// An expectation and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointCheck {
    #[serde(flatten)]
    pub expectation: Expectation,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Series as read: `None` for a series Mackerel does not know (404).
pub type ReadSeries = HashMap<(String, String), Option<Vec<(i64, f64)>>>;

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Compares every expectation with what was read.
pub fn check_points(expectations: &[Expectation], read: &ReadSeries) -> Vec<PointCheck> {
    let by_minute: HashMap<&(String, String), Option<HashMap<i64, f64>>> = read
        .iter()
        .map(|(key, points)| {
            (
                key,
                points.as_ref().map(|points| {
                    points
                        .iter()
                        .map(|(time, value)| (minute_of(*time), *value))
                        .collect()
                }),
            )
        })
        .collect();
    expectations
        .iter()
        .map(|e| {
            let key = (e.service.clone(), e.name.clone());
            let verdict = match by_minute.get(&key) {
                None | Some(None) => Verdict::Missing {
                    series_exists: false,
                },
                Some(Some(points)) => match points.get(&e.minute) {
                    None => Verdict::Missing {
                        series_exists: true,
                    },
                    Some(found) if same(*found, e.expected) => Verdict::Found,
                    Some(found) if e.candidates.iter().any(|c| same(*c, *found)) => {
                        Verdict::Superseded { found: *found }
                    }
                    Some(found) => Verdict::Mismatch { found: *found },
                },
            };
            PointCheck {
                expectation: e.clone(),
                verdict,
            }
        })
        .collect()
}

/// What was found in the DLQ for a message that should be parked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ParkedVerdict {
    Found,
    WrongReason {
        found: String,
    },
    Missing,
    /// Not among the messages read, but the DLQ was not read through: it may be there.
    Unseen,
}

/// A message that should be in the DLQ, and whether it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedCheck {
    pub seq: u64,
    pub kind: Kind,
    pub expected_reason: String,
    #[serde(flatten)]
    pub verdict: ParkedVerdict,
}

/// Compares the sent messages that should be parked with the reasons found in
/// the DLQ per sequence number (a message can be there more than once). When
/// the DLQ was not read through (`scan_complete` false), a message not found is
/// unseen, not missing.
pub fn check_parked(
    entries: &[Entry],
    found: &HashMap<u64, Vec<String>>,
    scan_complete: bool,
) -> Vec<ParkedCheck> {
    entries
        .iter()
        .filter(|e| e.sent)
        .filter_map(|e| {
            let expected = e.expected_reason.clone()?;
            let verdict = match found.get(&e.seq) {
                None if scan_complete => ParkedVerdict::Missing,
                None => ParkedVerdict::Unseen,
                Some(reasons) if reasons.contains(&expected) => ParkedVerdict::Found,
                Some(reasons) => ParkedVerdict::WrongReason {
                    found: reasons.join(","),
                },
            };
            Some(ParkedCheck {
                seq: e.seq,
                kind: e.kind,
                expected_reason: expected,
                verdict,
            })
        })
        .collect()
}

/// Valid messages of the run that are in the DLQ anyway, with the reasons found.
pub fn unexpectedly_parked(
    entries: &[Entry],
    found: &HashMap<u64, Vec<String>>,
) -> Vec<(u64, String)> {
    entries
        .iter()
        .filter(|e| e.sent && e.expected_reason.is_none())
        .filter_map(|e| found.get(&e.seq).map(|r| (e.seq, r.join(","))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestValue;

    const T: i64 = 1_795_981_380; // a minute start

    fn valid(seq: u64, name: &str, time: i64, value: f64) -> Entry {
        Entry {
            seq,
            kind: Kind::Valid,
            service: "svc".into(),
            values: vec![ManifestValue {
                name: name.into(),
                time,
                value,
            }],
            expected_reason: None,
            sent: true,
        }
    }

    fn parked(seq: u64, kind: Kind, reason: &str) -> Entry {
        Entry {
            seq,
            kind,
            service: "svc".into(),
            values: Vec::new(),
            expected_reason: Some(reason.into()),
            sent: true,
        }
    }

    #[test]
    fn values_of_one_minute_merge_by_the_rule() {
        let entries = vec![
            valid(1, "a", T + 5, 1.0),
            valid(2, "a", T + 50, 0.0),
            valid(3, "a", T + 30, 3.0),
            valid(4, "a", T + 60, 7.0),
        ];
        let merged = |rule| -> Vec<(i64, f64)> {
            expectations(&entries, rule)
                .iter()
                .map(|e| (e.minute, e.expected))
                .collect()
        };
        assert_eq!(merged(MergeRule::Max), vec![(T, 3.0), (T + 60, 7.0)]);
        assert_eq!(merged(MergeRule::Min), vec![(T, 0.0), (T + 60, 7.0)]);
        assert_eq!(merged(MergeRule::Sum), vec![(T, 4.0), (T + 60, 7.0)]);
        assert_eq!(merged(MergeRule::Last), vec![(T, 0.0), (T + 60, 7.0)]);
    }

    #[test]
    fn unsent_and_parked_messages_expect_nothing_in_mackerel() {
        let mut unsent = valid(1, "a", T, 1.0);
        unsent.sent = false;
        let entries = vec![unsent, parked(2, Kind::Malformed, "malformed_json")];
        assert!(expectations(&entries, MergeRule::Max).is_empty());
    }

    #[test]
    fn each_series_is_read_once_over_its_range() {
        let entries = vec![
            valid(1, "a", T + 5, 1.0),
            valid(2, "a", T + 600, 1.0),
            valid(3, "b", T, 1.0),
        ];
        let reads = windows(&expectations(&entries, MergeRule::Max));
        assert_eq!(
            reads,
            vec![
                SeriesWindow {
                    service: "svc".into(),
                    name: "a".into(),
                    from: T,
                    to: T + 659
                },
                SeriesWindow {
                    service: "svc".into(),
                    name: "b".into(),
                    from: T,
                    to: T + 59
                },
            ]
        );
    }

    #[test]
    fn long_ranges_are_cut_into_six_hour_windows() {
        let entries = vec![valid(1, "a", T, 1.0), valid(2, "a", T + 13 * 3600, 1.0)];
        let reads = windows(&expectations(&entries, MergeRule::Max));
        assert_eq!(reads.len(), 3);
        assert_eq!(reads[0].to + 1, reads[1].from);
        assert_eq!(reads[2].to, T + 13 * 3600 + 59);
    }

    #[test]
    fn points_are_found_missing_superseded_or_mismatched() {
        let entries = vec![
            valid(1, "a", T + 5, 1.0),
            valid(2, "a", T + 10, 0.0),
            valid(3, "a", T + 65, 5.0),
            valid(4, "a", T + 125, 2.0),
            valid(5, "a", T + 185, 2.0),
            valid(6, "gone", T, 1.0),
        ];
        let read: ReadSeries = [
            (
                ("svc".to_owned(), "a".to_owned()),
                Some(vec![(T, 0.0), (T + 60, 5.0), (T + 120, 9.0)]),
            ),
            (("svc".to_owned(), "gone".to_owned()), None),
        ]
        .into_iter()
        .collect();
        let verdicts: Vec<Verdict> = check_points(&expectations(&entries, MergeRule::Max), &read)
            .into_iter()
            .map(|c| c.verdict)
            .collect();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Superseded { found: 0.0 },
                Verdict::Found,
                Verdict::Mismatch { found: 9.0 },
                Verdict::Missing {
                    series_exists: true
                },
                Verdict::Missing {
                    series_exists: false
                },
            ]
        );
    }

    #[test]
    fn parked_messages_are_matched_by_sequence_and_reason() {
        let entries = vec![
            parked(1, Kind::Malformed, "malformed_json"),
            parked(2, Kind::TooOld, "too_old"),
            parked(3, Kind::Malformed, "invalid_message"),
            valid(4, "a", T, 1.0),
        ];
        let found: HashMap<u64, Vec<String>> = [
            (1, vec!["malformed_json".to_owned()]),
            (3, vec!["retries_exhausted".to_owned()]),
            (4, vec!["unknown_service".to_owned()]),
        ]
        .into_iter()
        .collect();
        let verdicts: Vec<(u64, ParkedVerdict)> = check_parked(&entries, &found, true)
            .into_iter()
            .map(|c| (c.seq, c.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                (1, ParkedVerdict::Found),
                (2, ParkedVerdict::Missing),
                (
                    3,
                    ParkedVerdict::WrongReason {
                        found: "retries_exhausted".into()
                    }
                ),
            ]
        );
        assert_eq!(
            unexpectedly_parked(&entries, &found),
            vec![(4, "unknown_service".to_owned())]
        );
    }

    #[test]
    fn a_message_not_found_in_a_dlq_read_only_in_part_is_unseen_not_missing() {
        let entries = vec![parked(1, Kind::Malformed, "malformed_json")];
        let checks = check_parked(&entries, &HashMap::new(), false);
        assert_eq!(checks[0].verdict, ParkedVerdict::Unseen);
    }
}
