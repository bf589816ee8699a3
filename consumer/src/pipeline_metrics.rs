//! The pipeline's own figures as service metrics, so a Mackerel monitor can
//! alert when results stop flowing or start piling up. Mackerel keeps one value
//! per name and minute and a later post overwrites an earlier one, so the figures
//! of every batch this process handles in a minute are summed, and each post
//! carries the minute's totals so far: a later batch's `0` never hides an earlier
//! batch's `50`. Concurrent processes (Lambda instances) still overwrite each
//! other's totals; the README says what the figures can show.

use crate::summary::BatchSummary;

/// The figures of one minute, summed over the batches this process handled in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteFigures {
    /// Epoch minute (seconds / 60).
    pub minute: i64,
    pub values_posted: usize,
    pub messages_parked: usize,
    pub messages_failed: usize,
    /// The oldest value any of its batches carried.
    pub oldest_value_age_seconds: Option<i64>,
}

impl MinuteFigures {
    /// Adds a batch handled at `now` (epoch seconds); a new minute starts from zero.
    /// Returns the minute's totals so far.
    pub fn add(&mut self, summary: &BatchSummary, now: i64) -> MinuteFigures {
        let minute = now.div_euclid(60);
        if minute != self.minute {
            *self = MinuteFigures {
                minute,
                ..MinuteFigures::default()
            };
        }
        self.values_posted += summary.values_posted;
        self.messages_parked += summary.parked_messages;
        self.messages_failed += summary.failed_messages;
        self.oldest_value_age_seconds = self
            .oldest_value_age_seconds
            .max(summary.oldest_value_age_seconds);
        *self
    }
}

/// The tsdb body with `<prefix>.values_posted`, `.messages_parked`,
/// `.messages_failed` and `.oldest_value_age_seconds` at `now`.
pub fn pipeline_figures_body(prefix: &str, figures: &MinuteFigures, now: i64) -> Vec<u8> {
    let values = [
        ("values_posted", figures.values_posted as f64),
        ("messages_parked", figures.messages_parked as f64),
        ("messages_failed", figures.messages_failed as f64),
        (
            "oldest_value_age_seconds",
            figures.oldest_value_age_seconds.unwrap_or(0) as f64,
        ),
    ];
    let points: Vec<serde_json::Value> = values
        .iter()
        .map(|(name, value)| serde_json::json!({"name": format!("{prefix}.{name}"), "time": now, "value": value}))
        .collect();
    serde_json::to_vec(&points).expect("plain JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_START: i64 = 1_795_981_380;

    fn batch(posted: usize, parked: usize, failed: usize, oldest: Option<i64>) -> BatchSummary {
        BatchSummary {
            values_posted: posted,
            parked_messages: parked,
            failed_messages: failed,
            oldest_value_age_seconds: oldest,
            ..BatchSummary::default()
        }
    }

    #[test]
    fn four_figures_under_the_prefix() {
        let mut figures = MinuteFigures::default();
        let totals = figures.add(&batch(12, 1, 2, Some(40)), 100);
        let body: serde_json::Value =
            serde_json::from_slice(&pipeline_figures_body("sfn_mackerel", &totals, 100)).unwrap();
        assert_eq!(
            body,
            serde_json::json!([
                {"name": "sfn_mackerel.values_posted", "time": 100, "value": 12.0},
                {"name": "sfn_mackerel.messages_parked", "time": 100, "value": 1.0},
                {"name": "sfn_mackerel.messages_failed", "time": 100, "value": 2.0},
                {"name": "sfn_mackerel.oldest_value_age_seconds", "time": 100, "value": 40.0},
            ])
        );
    }

    #[test]
    fn batches_of_one_minute_add_up_so_a_later_zero_never_hides_an_earlier_figure() {
        let mut figures = MinuteFigures::default();
        figures.add(&batch(0, 0, 50, Some(30)), MINUTE_START + 5);
        let totals = figures.add(&batch(7, 0, 0, Some(10)), MINUTE_START + 40);
        assert_eq!(totals.messages_failed, 50);
        assert_eq!(totals.values_posted, 7);
        assert_eq!(totals.oldest_value_age_seconds, Some(30));
    }

    #[test]
    fn a_new_minute_starts_from_zero() {
        let mut figures = MinuteFigures::default();
        figures.add(&batch(5, 1, 1, Some(90)), MINUTE_START + 59);
        let totals = figures.add(&batch(2, 0, 0, None), MINUTE_START + 60);
        assert_eq!(
            (
                totals.values_posted,
                totals.messages_parked,
                totals.messages_failed
            ),
            (2, 0, 0)
        );
        assert_eq!(totals.oldest_value_age_seconds, None);
    }
}
