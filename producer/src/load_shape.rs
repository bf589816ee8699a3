//! The load a flood sends, decided without any I/O: which services, jobs and
//! workflow executions, which messages fail, which are malformed or too old, and
//! when each value happened. A seeded RNG makes a run reproducible (`--seed`),
//! and every body carries the run's tag so its DLQ copy can be recognised.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sfn_mackerel_message::names::{check_metric_name, check_service_name};
use sfn_mackerel_message::reason::SetAsideReason;
use sfn_mackerel_message::timestamp::{format_epoch, MACKEREL_RETENTION_SECONDS};
use sfn_mackerel_message::{OutgoingMessage, OutgoingMetric};

use crate::manifest::{Entry, Kind, ManifestValue};

/// The oldest a valid value may be: 23 h, safely inside the consumer's window
/// (24 h less a 5-minute margin), with room for a slow flood and a slow drain.
pub const MAX_SPREAD_MINUTES: u32 = ((MACKEREL_RETENTION_SECONDS - 3600) / 60) as u32;
/// Too-old values are at least this old (25 h): well past Mackerel's 24 h.
const TOO_OLD_MIN_AGE_SECONDS: i64 = MACKEREL_RETENTION_SECONDS + 3600;
/// Bound on the executions table kept in memory.
pub const MAX_EXECUTIONS: u32 = 1_000_000;

/// How the load is shaped.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadShape {
    /// The tag put in every body; letters, digits and `-` only.
    pub load_test_id: String,
    pub services: Vec<String>,
    /// Jobs per service; each reports `glue.job-NN.failed` and `glue.job-NN.duration_seconds`.
    pub jobs: u32,
    /// Distinct workflow executions; messages cycle over them, so a run longer than
    /// executions x jobs repeats (service, job, minute) and exercises the merge rule.
    pub executions: u32,
    /// Share of valid messages whose `failed` value is 1.
    pub failure_fraction: f64,
    /// Share of messages that are not valid results (half not JSON, half missing `value`).
    pub malformed_fraction: f64,
    /// Share of messages whose values are more than 24 h old.
    pub too_old_fraction: f64,
    /// Valid values happen within this many minutes before `now`.
    pub spread_minutes: u32,
    pub seed: u64,
    /// Epoch seconds the times are relative to.
    pub now: i64,
}

impl LoadShape {
    /// Checks the shape, with a sentence naming the flag at fault.
    pub fn check(&self) -> Result<(), String> {
        if self.services.is_empty() {
            return Err("no services: pass --services N or --service NAME".into());
        }
        for service in &self.services {
            check_service_name(service).map_err(|why| format!("--service: {why}"))?;
        }
        if self.jobs == 0 || self.jobs > 999 {
            return Err(format!("--jobs {} must be from 1 to 999", self.jobs));
        }
        check_metric_name(&metric_name(self.jobs - 1, "failed")).map_err(|w| w.to_string())?;
        if self.executions == 0 || self.executions > MAX_EXECUTIONS {
            return Err(format!(
                "--executions {} must be from 1 to {MAX_EXECUTIONS}",
                self.executions
            ));
        }
        for (flag, fraction) in [
            ("--failure-fraction", self.failure_fraction),
            ("--malformed-fraction", self.malformed_fraction),
            ("--too-old-fraction", self.too_old_fraction),
        ] {
            if !(0.0..=1.0).contains(&fraction) {
                return Err(format!("{flag} {fraction} must be from 0 to 1"));
            }
        }
        if self.malformed_fraction + self.too_old_fraction > 1.0 {
            return Err("--malformed-fraction plus --too-old-fraction exceeds 1".into());
        }
        if self.spread_minutes > MAX_SPREAD_MINUTES {
            return Err(format!(
                "--spread-minutes {} is more than {MAX_SPREAD_MINUTES}: older values would reach Mackerel's 24-hour limit; use --too-old-fraction for those",
                self.spread_minutes
            ));
        }
        if self.load_test_id.is_empty()
            || !self
                .load_test_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "load test id {:?} must be letters, digits and '-'",
                self.load_test_id
            ));
        }
        Ok(())
    }
}

/// The metric name a job reports.
pub fn metric_name(job: u32, what: &str) -> String {
    format!("glue.job-{:02}.{what}", job + 1)
}

/// One message to send: its body and its manifest entry (not yet sent).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMessage {
    pub body: String,
    pub entry: Entry,
}

/// An endless, reproducible sequence of planned messages.
pub struct Generator {
    shape: LoadShape,
    rng: StdRng,
    execution_starts: Vec<i64>,
    seq: u64,
}

impl Generator {
    /// Expects a shape that passed [`LoadShape::check`].
    pub fn new(shape: LoadShape) -> Self {
        let mut rng = StdRng::seed_from_u64(shape.seed);
        let spread = i64::from(shape.spread_minutes) * 60;
        let execution_starts = (0..shape.executions)
            .map(|_| shape.now - rng.random_range(0..=spread))
            .collect();
        Self {
            shape,
            rng,
            execution_starts,
            seq: 0,
        }
    }

    fn plan(&mut self, seq: u64) -> PlannedMessage {
        let shape = &self.shape;
        let executions = u64::from(shape.executions);
        let execution = (seq % executions) as usize;
        let service = shape.services[execution % shape.services.len()].clone();
        let job = ((seq / executions) % u64::from(shape.jobs)) as u32;
        let draw: f64 = self.rng.random();
        let kind = if draw < shape.malformed_fraction {
            Kind::Malformed
        } else if draw < shape.malformed_fraction + shape.too_old_fraction {
            Kind::TooOld
        } else {
            Kind::Valid
        };
        let tag = format!(
            "{{\"load_test_id\":\"{}\",\"seq\":{seq},\"execution\":\"exec-{execution:06}\",",
            shape.load_test_id
        );
        if kind == Kind::Malformed {
            let failed_name = metric_name(job, "failed");
            let (body, reason) = if self.rng.random_bool(0.5) {
                (
                    format!("{tag}\"service\":\"{service}\",\"metrics\":[{{\"name\":\"{failed_name}\",\"value\":"),
                    SetAsideReason::MalformedJson.code(),
                )
            } else {
                (
                    format!("{tag}\"service\":\"{service}\",\"name\":\"{failed_name}\"}}"),
                    SetAsideReason::InvalidMessage.code(),
                )
            };
            return PlannedMessage {
                body,
                entry: Entry {
                    seq,
                    kind,
                    service,
                    values: Vec::new(),
                    expected_reason: Some(reason.to_owned()),
                    sent: false,
                },
            };
        }

        let time = if kind == Kind::TooOld {
            shape.now - TOO_OLD_MIN_AGE_SECONDS - self.rng.random_range(0..3 * 3600)
        } else {
            // The jobs of one execution finish a few seconds apart, never in the future.
            (self.execution_starts[execution] + i64::from(job) * 5).min(shape.now)
        };
        let failed = if self.rng.random_bool(shape.failure_fraction) {
            1.0
        } else {
            0.0
        };
        let duration = f64::from(self.rng.random_range(10..=3600_u32));
        let values = vec![
            ManifestValue {
                name: metric_name(job, "failed"),
                time,
                value: failed,
            },
            ManifestValue {
                name: metric_name(job, "duration_seconds"),
                time,
                value: duration,
            },
        ];
        let message = OutgoingMessage {
            service: service.clone(),
            time: Some(format_epoch(time)),
            metrics: values
                .iter()
                .map(|v| OutgoingMetric {
                    name: v.name.clone(),
                    value: v.value,
                    time: None,
                })
                .collect(),
        };
        let encoded = message.to_body();
        let body = format!("{tag}{}", encoded.strip_prefix('{').unwrap_or(&encoded));
        PlannedMessage {
            body,
            entry: Entry {
                seq,
                kind,
                service,
                values,
                expected_reason: (kind == Kind::TooOld)
                    .then(|| SetAsideReason::TooOld.code().to_owned()),
                sent: false,
            },
        }
    }
}

impl Iterator for Generator {
    type Item = PlannedMessage;

    fn next(&mut self) -> Option<PlannedMessage> {
        let seq = self.seq;
        self.seq += 1;
        Some(self.plan(seq))
    }
}

/// The run tag and sequence number of a flood body, found textually so that it
/// works for malformed bodies too: `{"load_test_id":"ID","seq":N,...`.
pub fn tag_of(body: &str) -> Option<(&str, u64)> {
    let rest = body.strip_prefix("{\"load_test_id\":\"")?;
    let (id, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(",\"seq\":")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((id, rest[..end].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfn_mackerel_message::{decode, DecodeContext, SetAsideReason, TimeWindow};

    const NOW: i64 = 1_795_981_423;

    fn shape() -> LoadShape {
        LoadShape {
            load_test_id: "lt-test-1".into(),
            services: vec!["svc-a".into(), "svc-b".into()],
            jobs: 3,
            executions: 4,
            failure_fraction: 0.2,
            malformed_fraction: 0.1,
            too_old_fraction: 0.1,
            spread_minutes: 10,
            seed: 42,
            now: NOW,
        }
    }

    fn context() -> DecodeContext {
        DecodeContext {
            sent_at: Some(NOW),
            window: TimeWindow::around(NOW, 600),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_messages() {
        let a: Vec<_> = Generator::new(shape()).take(200).collect();
        let b: Vec<_> = Generator::new(shape()).take(200).collect();
        assert_eq!(a, b);
        let other: Vec<_> = Generator::new(LoadShape {
            seed: 43,
            ..shape()
        })
        .take(200)
        .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn every_message_is_what_its_manifest_entry_says_to_the_consumer() {
        for planned in Generator::new(shape()).take(2_000) {
            let decoded = decode(&planned.body, &context());
            match planned.entry.kind {
                Kind::Valid => {
                    let decoded = decoded.expect("a valid message decodes");
                    assert_eq!(decoded.service, planned.entry.service);
                    let values: Vec<(String, i64, f64)> = decoded
                        .values
                        .iter()
                        .map(|v| (v.name.clone(), v.time, v.value))
                        .collect();
                    let expected: Vec<(String, i64, f64)> = planned
                        .entry
                        .values
                        .iter()
                        .map(|v| (v.name.clone(), v.time, v.value))
                        .collect();
                    assert_eq!(values, expected);
                }
                Kind::Malformed | Kind::TooOld => {
                    let rejection = decoded.expect_err("set aside");
                    assert_eq!(
                        Some(rejection.reason.code()),
                        planned.entry.expected_reason.as_deref(),
                        "{}",
                        planned.body
                    );
                }
            }
        }
    }

    #[test]
    fn fractions_shape_the_kinds_and_failures() {
        let entries: Vec<Entry> = Generator::new(shape())
            .take(10_000)
            .map(|p| p.entry)
            .collect();
        let share = |kind: Kind| {
            entries.iter().filter(|e| e.kind == kind).count() as f64 / entries.len() as f64
        };
        assert!((share(Kind::Malformed) - 0.1).abs() < 0.02);
        assert!((share(Kind::TooOld) - 0.1).abs() < 0.02);
        let failed: Vec<f64> = entries
            .iter()
            .filter(|e| e.kind == Kind::Valid)
            .map(|e| e.values[0].value)
            .collect();
        let failure_share = failed.iter().sum::<f64>() / failed.len() as f64;
        assert!((failure_share - 0.2).abs() < 0.03, "{failure_share}");
        let reasons: std::collections::BTreeSet<_> = entries
            .iter()
            .filter_map(|e| e.expected_reason.clone())
            .collect();
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            vec![
                SetAsideReason::InvalidMessage.code().to_owned(),
                SetAsideReason::MalformedJson.code().to_owned(),
                SetAsideReason::TooOld.code().to_owned()
            ]
        );
    }

    #[test]
    fn valid_times_stay_within_the_spread_and_never_in_the_future() {
        for planned in Generator::new(shape()).take(2_000) {
            for value in &planned.entry.values {
                match planned.entry.kind {
                    Kind::Valid => assert!((NOW - 600..=NOW).contains(&value.time)),
                    _ => assert!(value.time < NOW - 24 * 3600),
                }
            }
        }
    }

    #[test]
    fn services_and_jobs_cycle_over_the_executions() {
        let entries: Vec<Entry> = Generator::new(LoadShape {
            malformed_fraction: 0.0,
            too_old_fraction: 0.0,
            ..shape()
        })
        .take(12)
        .map(|p| p.entry)
        .collect();
        let services: Vec<&str> = entries.iter().map(|e| e.service.as_str()).collect();
        assert_eq!(services[..4], ["svc-a", "svc-b", "svc-a", "svc-b"]);
        let jobs: Vec<&str> = entries.iter().map(|e| e.values[0].name.as_str()).collect();
        assert_eq!(jobs[0], "glue.job-01.failed");
        assert_eq!(jobs[4], "glue.job-02.failed");
        assert_eq!(jobs[8], "glue.job-03.failed");
    }

    #[test]
    fn the_tag_is_found_in_every_kind_of_body() {
        for planned in Generator::new(shape()).take(500) {
            assert_eq!(
                tag_of(&planned.body),
                Some(("lt-test-1", planned.entry.seq)),
                "{}",
                planned.body
            );
        }
        assert_eq!(tag_of("{\"service\":\"x\"}"), None);
        assert_eq!(tag_of("not json"), None);
    }

    #[test]
    fn bad_shapes_name_the_flag() {
        let bad = LoadShape {
            malformed_fraction: 1.5,
            ..shape()
        };
        assert!(bad.check().unwrap_err().contains("--malformed-fraction"));
        let bad = LoadShape {
            spread_minutes: 2_000,
            ..shape()
        };
        assert!(bad.check().unwrap_err().contains("--spread-minutes"));
        let bad = LoadShape {
            services: vec!["-bad".into()],
            ..shape()
        };
        assert!(bad.check().unwrap_err().contains("--service"));
        assert_eq!(shape().check(), Ok(()));
    }
}
