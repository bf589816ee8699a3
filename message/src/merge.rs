//! How values that land on one metric name and minute become the one value
//! Mackerel keeps (it stores one per minute, and a later post overwrites an
//! earlier one). The rule names are the `MERGE_RULE` contract: the consumer
//! merges by them and the CLI's `verify` checks by them, so both read this.

use serde::Serialize;

/// How values for the same metric name in the same minute become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeRule {
    /// The largest value: a `failed = 1` is never hidden by a `failed = 0` in the same minute.
    Max,
    /// The smallest value.
    Min,
    /// The value with the latest time; on equal times, the later one.
    Last,
    /// The sum (counts). At-least-once delivery can count a redelivered message twice.
    Sum,
}

impl MergeRule {
    /// Every rule, in the order help texts list them.
    pub const ALL: [MergeRule; 4] = [Self::Max, Self::Min, Self::Last, Self::Sum];
    /// Their names, as `MERGE_RULE` and `--merge-rule` take them.
    pub const NAMES: [&'static str; 4] = ["max", "min", "last", "sum"];

    /// The name as `MERGE_RULE` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Max => "max",
            Self::Min => "min",
            Self::Last => "last",
            Self::Sum => "sum",
        }
    }

    /// Reads a name, in any case; `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|rule| rule.name().eq_ignore_ascii_case(name))
    }

    /// The merged value of values given in any order, each with its time and
    /// its order of arrival; `None` for no values.
    pub fn merge_all(self, values: impl IntoIterator<Item = (i64, u64, f64)>) -> Option<f64> {
        let mut values = values.into_iter();
        let (time, order, value) = values.next()?;
        let mut merged = Merged::first(value, time, order);
        for (time, order, value) in values {
            merged.add(self, value, time, order);
        }
        Some(merged.value)
    }
}

/// A value being merged, and what `Last` needs to know about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merged {
    pub value: f64,
    /// (time, order of arrival) of the value `Last` keeps.
    last: (i64, u64),
}

impl Merged {
    /// The first value of a minute.
    pub fn first(value: f64, time: i64, order: u64) -> Self {
        Self {
            value,
            last: (time, order),
        }
    }

    /// Merges one more value of the same minute in.
    pub fn add(&mut self, rule: MergeRule, value: f64, time: i64, order: u64) {
        self.value = match rule {
            MergeRule::Max => self.value.max(value),
            MergeRule::Min => self.value.min(value),
            MergeRule::Sum => self.value + value,
            MergeRule::Last => {
                if (time, order) > self.last {
                    self.last = (time, order);
                    value
                } else {
                    self.value
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_981_380;

    #[test]
    fn names_are_read_in_any_case_and_only_these() {
        assert_eq!(MergeRule::from_name("MAX"), Some(MergeRule::Max));
        assert_eq!(MergeRule::from_name("last"), Some(MergeRule::Last));
        assert_eq!(MergeRule::from_name("avg"), None);
        for (rule, name) in MergeRule::ALL.iter().zip(MergeRule::NAMES) {
            assert_eq!(rule.name(), name);
        }
    }

    #[test]
    fn max_keeps_a_failure_over_a_success_min_the_reverse_sum_adds() {
        let values = [(T + 5, 0, 1.0), (T + 50, 1, 0.0)];
        assert_eq!(MergeRule::Max.merge_all(values), Some(1.0));
        assert_eq!(MergeRule::Min.merge_all(values), Some(0.0));
        assert_eq!(MergeRule::Sum.merge_all(values), Some(1.0));
    }

    #[test]
    fn last_takes_the_latest_time_then_the_later_arrival() {
        let values = [(T + 40, 0, 3.0), (T + 10, 1, 1.0), (T + 40, 2, 7.0)];
        assert_eq!(MergeRule::Last.merge_all(values), Some(7.0));
        let reversed = [(T + 40, 2, 7.0), (T + 10, 1, 1.0), (T + 40, 0, 3.0)];
        assert_eq!(
            MergeRule::Last.merge_all(reversed),
            Some(7.0),
            "order of the list does not matter"
        );
    }

    #[test]
    fn no_values_merge_to_nothing() {
        assert_eq!(MergeRule::Max.merge_all([]), None);
    }
}
