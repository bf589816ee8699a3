//! Turning a batch of decoded messages into the points each Mackerel service
//! receives, merging values that land on the same name and minute (Mackerel keeps
//! one value per minute, so the choice among them must be ours and deliberate),
//! and finding which messages must travel in the same request.
//!
//! Two messages that contributed to one merged point must be delivered together:
//! if one request carried the point and another request carrying the rest of a
//! message failed, that message would come back alone and its redelivery would
//! post its own value over the merged one (a `0` over a `1`). Such messages form
//! a [`Unit`]; a unit is never split across requests unless it alone exceeds one.
//! Units that share a series are kept together too where they fit, so Mackerel
//! sees a series' values of one batch in one request (it evaluates a monitor only
//! on the newest point a request writes).

use std::collections::{BTreeMap, HashMap};

use sfn_mackerel_message::merge::Merged;
use sfn_mackerel_message::timestamp::minute_of;
use sfn_mackerel_message::Decoded;
pub use sfn_mackerel_message::MergeRule;

/// One value to post, and the messages (batch positions) it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub name: &'a str,
    /// The latest time among the merged values (epoch seconds).
    pub time: i64,
    pub value: f64,
    pub sources: Vec<usize>,
}

impl Point<'_> {
    /// The minute Mackerel stores the point in.
    pub fn minute(&self) -> i64 {
        minute_of(self.time)
    }
}

/// Points whose messages must be delivered together: every message that
/// contributed to any of them, and every point those messages contributed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit<'a> {
    /// Ordered by minute, then name.
    pub points: Vec<Point<'a>>,
    /// The batch positions of its messages, sorted.
    pub sources: Vec<usize>,
}

/// All points of one service, as units in the order they should be posted:
/// units that share a series next to each other (a `series_groups` entry each),
/// older series first.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePoints<'a> {
    pub service: &'a str,
    pub units: Vec<Unit<'a>>,
    /// Runs of consecutive `units` that share series: kept in one request when they fit.
    pub series_groups: Vec<std::ops::Range<usize>>,
}

impl<'a> ServicePoints<'a> {
    /// Every point of the service, in posting order.
    pub fn points(&self) -> impl Iterator<Item = &Point<'a>> {
        self.units.iter().flat_map(|unit| unit.points.iter())
    }
}

struct Accumulator<'a> {
    point: Point<'a>,
    merged: Merged,
}

/// Groups decoded messages (with their batch positions) per service and merges
/// same-minute values by `rule`. Services come out sorted by name.
pub fn group<'a>(messages: &'a [(usize, Decoded)], rule: MergeRule) -> Vec<ServicePoints<'a>> {
    group_by_rules(messages, |_| rule)
}

/// As [`group`], with the merge rule chosen per metric name (a job's status
/// series merge by max whatever the configured rule: see `alerting`).
pub fn group_by_rules<'a>(
    messages: &'a [(usize, Decoded)],
    rule_of: impl Fn(&str) -> MergeRule,
) -> Vec<ServicePoints<'a>> {
    let mut by_service: HashMap<&'a str, BTreeMap<(&'a str, i64), Accumulator<'a>>> =
        HashMap::new();
    let mut order = 0u64;
    for (source, decoded) in messages {
        let series = by_service.entry(decoded.service.as_str()).or_default();
        for value in &decoded.values {
            order += 1;
            let key = (value.name.as_str(), minute_of(value.time));
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
                            merged: Merged::first(value.value, value.time, order),
                        },
                    );
                }
                Some(acc) => {
                    acc.merged
                        .add(rule_of(&value.name), value.value, value.time, order);
                    let point = &mut acc.point;
                    point.value = acc.merged.value;
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
        .map(|(service, series)| {
            into_units(service, series.into_values().map(|acc| acc.point).collect())
        })
        .collect();
    services.sort_by(|a, b| a.service.cmp(b.service));
    services
}

/// Disjoint sets over indices, with path halving.
struct DisjointSets(Vec<usize>);

impl DisjointSets {
    fn new(size: usize) -> Self {
        Self((0..size).collect())
    }

    fn root(&mut self, mut index: usize) -> usize {
        while self.0[index] != index {
            self.0[index] = self.0[self.0[index]];
            index = self.0[index];
        }
        index
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

/// Splits one service's points (ordered by name and minute) into units and
/// orders them for posting.
fn into_units<'a>(service: &'a str, points: Vec<Point<'a>>) -> ServicePoints<'a> {
    // Points that share a message belong to one unit.
    let mut sets = DisjointSets::new(points.len());
    let mut first_point_of: HashMap<usize, usize> = HashMap::new();
    for (index, point) in points.iter().enumerate() {
        for source in &point.sources {
            match first_point_of.get(source) {
                Some(&first) => sets.join(first, index),
                None => {
                    first_point_of.insert(*source, index);
                }
            }
        }
    }
    let mut unit_of_root: HashMap<usize, usize> = HashMap::new();
    let mut units: Vec<Unit<'a>> = Vec::new();
    for (index, point) in points.into_iter().enumerate() {
        let root = sets.root(index);
        let unit = *unit_of_root.entry(root).or_insert_with(|| {
            units.push(Unit {
                points: Vec::new(),
                sources: Vec::new(),
            });
            units.len() - 1
        });
        units[unit].sources.extend_from_slice(&point.sources);
        units[unit].points.push(point);
    }
    for unit in &mut units {
        unit.sources.sort_unstable();
        unit.sources.dedup();
        unit.points
            .sort_by(|a, b| (a.minute(), a.name).cmp(&(b.minute(), b.name)));
    }

    // Units that share a series are posted next to each other.
    let mut series_sets = DisjointSets::new(units.len());
    let mut first_unit_of: HashMap<&'a str, usize> = HashMap::new();
    for (index, unit) in units.iter().enumerate() {
        for point in &unit.points {
            match first_unit_of.get(point.name) {
                Some(&first) => series_sets.join(first, index),
                None => {
                    first_unit_of.insert(point.name, index);
                }
            }
        }
    }
    // Order: series group by its oldest minute, then units inside it by theirs.
    let oldest = |unit: &Unit<'a>| -> Option<(i64, &'a str)> {
        unit.points.first().map(|p| (p.minute(), p.name))
    };
    let mut group_oldest: HashMap<usize, (i64, &str)> = HashMap::new();
    for (index, unit) in units.iter().enumerate() {
        let root = series_sets.root(index);
        if let Some(key) = oldest(unit) {
            let slot = group_oldest.entry(root).or_insert(key);
            *slot = (*slot).min(key);
        }
    }
    let mut order: Vec<(usize, usize)> = (0..units.len())
        .map(|index| (series_sets.root(index), index))
        .collect();
    order.sort_by(|&(group_a, a), &(group_b, b)| {
        (group_oldest.get(&group_a), group_a, oldest(&units[a])).cmp(&(
            group_oldest.get(&group_b),
            group_b,
            oldest(&units[b]),
        ))
    });
    let mut slots: Vec<Option<Unit<'a>>> = units.into_iter().map(Some).collect();
    let mut ordered = Vec::with_capacity(slots.len());
    let mut series_groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut current_group = None;
    for (group, index) in order {
        if current_group != Some(group) {
            series_groups.push(ordered.len()..ordered.len());
            current_group = Some(group);
        }
        ordered.push(slots[index].take().expect("each unit is placed once"));
        if let Some(last) = series_groups.last_mut() {
            last.end = ordered.len();
        }
    }
    ServicePoints {
        service,
        units: ordered,
        series_groups,
    }
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
            event_id: None,
        }
    }

    fn batch(messages: Vec<Decoded>) -> Vec<(usize, Decoded)> {
        messages.into_iter().enumerate().collect()
    }

    fn points<'a>(service: &'a ServicePoints<'a>) -> Vec<&'a Point<'a>> {
        service.points().collect()
    }

    fn unit_sources(service: &ServicePoints<'_>) -> Vec<Vec<usize>> {
        service.units.iter().map(|u| u.sources.clone()).collect()
    }

    #[test]
    fn values_are_grouped_per_service() {
        let messages = batch(vec![
            message("svc-b", &[("x", 1.0, MINUTE)]),
            message("svc-a", &[("z", 1.0, MINUTE), ("y", 2.0, MINUTE)]),
        ]);
        let grouped = group(&messages, MergeRule::Max);
        let summary: Vec<(&str, Vec<&str>)> = grouped
            .iter()
            .map(|s| {
                let mut names: Vec<&str> = s.points().map(|p| p.name).collect();
                names.sort_unstable();
                (s.service, names)
            })
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
        let grouped = group(&messages, MergeRule::Max);
        let point = points(&grouped[0])[0];
        assert_eq!((point.value, point.time), (1.0, MINUTE + 50));
        assert_eq!(point.sources, vec![0, 1]);
    }

    #[test]
    fn values_in_different_minutes_stay_apart_older_first() {
        let messages = batch(vec![
            message("svc", &[("job.failed", 0.0, MINUTE + 60)]),
            message("svc", &[("job.failed", 1.0, MINUTE + 59)]),
        ]);
        let grouped = group(&messages, MergeRule::Max);
        let values: Vec<f64> = points(&grouped[0]).iter().map(|p| p.value).collect();
        assert_eq!(values, vec![1.0, 0.0]);
    }

    #[test]
    fn last_takes_the_latest_time_then_the_later_message() {
        let messages = batch(vec![
            message("svc", &[("n", 3.0, MINUTE + 40)]),
            message("svc", &[("n", 1.0, MINUTE + 10)]),
            message("svc", &[("n", 7.0, MINUTE + 40)]),
        ]);
        assert_eq!(points(&group(&messages, MergeRule::Last)[0])[0].value, 7.0);
    }

    #[test]
    fn sum_and_min() {
        let messages = batch(vec![
            message("svc", &[("n", 3.0, MINUTE)]),
            message("svc", &[("n", 4.0, MINUTE + 1)]),
        ]);
        assert_eq!(points(&group(&messages, MergeRule::Sum)[0])[0].value, 7.0);
        assert_eq!(points(&group(&messages, MergeRule::Min)[0])[0].value, 3.0);
    }

    #[test]
    fn a_message_listed_once_per_point_even_with_repeated_values() {
        let messages = batch(vec![message(
            "svc",
            &[("n", 1.0, MINUTE), ("n", 2.0, MINUTE)],
        )]);
        assert_eq!(
            points(&group(&messages, MergeRule::Max)[0])[0].sources,
            vec![0]
        );
    }

    #[test]
    fn messages_that_share_a_merged_point_form_one_unit() {
        // 0 and 1 share a.failed@MINUTE; 1 and 2 share b@MINUTE+60; 3 is alone.
        let messages = batch(vec![
            message("svc", &[("a.failed", 1.0, MINUTE)]),
            message(
                "svc",
                &[("a.failed", 0.0, MINUTE + 3), ("b", 5.0, MINUTE + 60)],
            ),
            message("svc", &[("b", 6.0, MINUTE + 61)]),
            message("svc", &[("c", 1.0, MINUTE)]),
        ]);
        let grouped = group(&messages, MergeRule::Max);
        let mut units = unit_sources(&grouped[0]);
        units.sort();
        assert_eq!(units, vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn units_of_one_series_are_ordered_next_to_each_other_oldest_first() {
        let messages = batch(vec![
            message("svc", &[("job.failed", 0.0, MINUTE + 300)]),
            message("svc", &[("other", 1.0, MINUTE + 120)]),
            message("svc", &[("job.failed", 1.0, MINUTE)]),
        ]);
        let grouped = group(&messages, MergeRule::Max);
        assert_eq!(unit_sources(&grouped[0]), vec![vec![2], vec![0], vec![1]]);
        assert_eq!(grouped[0].series_groups, vec![0..2, 2..3]);
    }
}
