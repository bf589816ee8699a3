//! Turning a batch of decoded messages into one list of points per Mackerel
//! service, merging values that land on the same name and minute (Mackerel keeps
//! one value per minute, so the choice among them must be ours and deliberate).

use std::collections::{BTreeMap, HashMap};

use sfn_mackerel_message::Decoded;

/// How values for the same metric name in the same minute become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeRule {
    /// The largest value: a `failed = 1` is never hidden by a `failed = 0` in the same minute.
    Max,
    /// The smallest value.
    Min,
    /// The value with the latest time; on equal times, the one later in the batch.
    Last,
    /// The sum (counts). At-least-once delivery can count a redelivered message twice.
    Sum,
}

impl MergeRule {
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "max" => Some(Self::Max),
            "min" => Some(Self::Min),
            "last" => Some(Self::Last),
            "sum" => Some(Self::Sum),
            _ => None,
        }
    }
}

/// One value to post, and the messages (batch positions) it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub name: &'a str,
    /// The latest time among the merged values (epoch seconds).
    pub time: i64,
    pub value: f64,
    pub sources: Vec<usize>,
}

/// All points of one service, ordered by name and time.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePoints<'a> {
    pub service: &'a str,
    pub points: Vec<Point<'a>>,
}

struct Accumulator<'a> {
    point: Point<'a>,
    /// (time, order in batch) of the value `Last` keeps.
    last_key: (i64, usize),
}

/// Groups decoded messages (with their batch positions) per service and merges
/// same-minute values by `rule`. Services come out sorted by name.
pub fn group<'a>(messages: &'a [(usize, Decoded)], rule: MergeRule) -> Vec<ServicePoints<'a>> {
    let mut by_service: HashMap<&'a str, BTreeMap<(&'a str, i64), Accumulator<'a>>> =
        HashMap::new();
    let mut order = 0usize;
    for (source, decoded) in messages {
        let series = by_service.entry(decoded.service.as_str()).or_default();
        for value in &decoded.values {
            order += 1;
            let minute = value.time.div_euclid(60);
            let key = (value.name.as_str(), minute);
            match series.get_mut(&key) {
                None => {
                    series.insert(
                        key,
                        Accumulator {
                            point: Point {
                                name: &value.name,
                                time: value.time,
                                value: value.value,
                                sources: vec![*source],
                            },
                            last_key: (value.time, order),
                        },
                    );
                }
                Some(acc) => {
                    let point = &mut acc.point;
                    point.value = match rule {
                        MergeRule::Max => point.value.max(value.value),
                        MergeRule::Min => point.value.min(value.value),
                        MergeRule::Sum => point.value + value.value,
                        MergeRule::Last => {
                            if (value.time, order) > acc.last_key {
                                acc.last_key = (value.time, order);
                                value.value
                            } else {
                                point.value
                            }
                        }
                    };
                    point.time = point.time.max(value.time);
                    if point.sources.last() != Some(source) {
                        point.sources.push(*source);
                    }
                }
            }
        }
    }
    let mut services: Vec<ServicePoints<'a>> = by_service
        .into_iter()
        .map(|(service, series)| ServicePoints {
            service,
            points: series.into_values().map(|acc| acc.point).collect(),
        })
        .collect();
    services.sort_by(|a, b| a.service.cmp(b.service));
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfn_mackerel_message::MetricValue;

    const MINUTE: i64 = 1_795_981_380; // 19:43:00Z

    fn message(service: &str, values: &[(&str, f64, i64)]) -> Decoded {
        Decoded {
            service: service.into(),
            values: values
                .iter()
                .map(|(name, value, time)| MetricValue {
                    name: (*name).into(),
                    value: *value,
                    time: *time,
                })
                .collect(),
        }
    }

    fn batch(messages: Vec<Decoded>) -> Vec<(usize, Decoded)> {
        messages.into_iter().enumerate().collect()
    }

    #[test]
    fn values_are_grouped_per_service_in_name_order() {
        let messages = batch(vec![
            message("svc-b", &[("x", 1.0, MINUTE)]),
            message("svc-a", &[("z", 1.0, MINUTE), ("y", 2.0, MINUTE)]),
        ]);
        let grouped = group(&messages, MergeRule::Max);
        let summary: Vec<(&str, Vec<&str>)> = grouped
            .iter()
            .map(|s| (s.service, s.points.iter().map(|p| p.name).collect()))
            .collect();
        assert_eq!(
            summary,
            vec![("svc-a", vec!["y", "z"]), ("svc-b", vec!["x"])]
        );
    }

    #[test]
    fn max_keeps_a_failure_over_a_later_success_in_the_same_minute() {
        let messages = batch(vec![
            message("svc", &[("job.failed", 1.0, MINUTE + 5)]),
            message("svc", &[("job.failed", 0.0, MINUTE + 50)]),
        ]);
        let point = &group(&messages, MergeRule::Max)[0].points[0];
        assert_eq!((point.value, point.time), (1.0, MINUTE + 50));
        assert_eq!(point.sources, vec![0, 1]);
    }

    #[test]
    fn values_in_different_minutes_stay_apart() {
        let messages = batch(vec![
            message("svc", &[("job.failed", 1.0, MINUTE + 59)]),
            message("svc", &[("job.failed", 0.0, MINUTE + 60)]),
        ]);
        let points = &group(&messages, MergeRule::Max)[0].points;
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].value, 1.0);
        assert_eq!(points[1].value, 0.0);
    }

    #[test]
    fn last_takes_the_latest_time_then_the_later_message() {
        let messages = batch(vec![
            message("svc", &[("n", 3.0, MINUTE + 40)]),
            message("svc", &[("n", 1.0, MINUTE + 10)]),
            message("svc", &[("n", 7.0, MINUTE + 40)]),
        ]);
        assert_eq!(group(&messages, MergeRule::Last)[0].points[0].value, 7.0);
    }

    #[test]
    fn sum_and_min() {
        let messages = batch(vec![
            message("svc", &[("n", 3.0, MINUTE)]),
            message("svc", &[("n", 4.0, MINUTE + 1)]),
        ]);
        assert_eq!(group(&messages, MergeRule::Sum)[0].points[0].value, 7.0);
        assert_eq!(group(&messages, MergeRule::Min)[0].points[0].value, 3.0);
    }

    #[test]
    fn a_message_listed_once_per_point_even_with_repeated_values() {
        let messages = batch(vec![message(
            "svc",
            &[("n", 1.0, MINUTE), ("n", 2.0, MINUTE)],
        )]);
        assert_eq!(
            group(&messages, MergeRule::Max)[0].points[0].sources,
            vec![0]
        );
    }

    #[test]
    fn merge_rule_names() {
        assert_eq!(MergeRule::from_name("MAX"), Some(MergeRule::Max));
        assert_eq!(MergeRule::from_name("last"), Some(MergeRule::Last));
        assert_eq!(MergeRule::from_name("avg"), None);
    }
}
