//! What a job's alert series gets when its status arrives, so that every
//! delivered failure opens the job's alert whatever arrived before it.
//!
//! Mackerel evaluates a monitor on a series' newest point, and not at all when
//! the point that arrives is older than the newest one. A failure delivered late
//! (after a Mackerel 500 and a redelivery, a redrive, a race between consumers)
//! is then never evaluated if it is written at the job's time. So the graph keeps
//! the job's time (`<job>.failed`), and the monitor watches a second series
//! stamped when the consumer delivers (`<job>.alert`):
//! - every delivered failure writes `1` at delivery time first: it is the newest
//!   point, so it is evaluated and the alert opens (guarantee 1);
//! - then the alert series takes the status of the job's newest run by the job's
//!   own time, read from what Mackerel already holds plus this batch: a `0`
//!   follows at once when a newer run already succeeded (guarantee 2).
//!
//! A minute of the graph that holds both a failure and a success shows the
//! failure: what Mackerel holds for that minute is merged with this batch's
//! values by max, whatever MERGE_RULE says (a status is a flag, and max is the
//! one rule a redelivered duplicate cannot change). Pure: the reads and posts are
//! the caller's.

use sfn_mackerel_message::status;

/// A status point: epoch seconds and the `failed` value (0 or 1; any value
/// above [`status::FAILED_ABOVE`] is a failure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusPoint {
    pub time: i64,
    pub value: f64,
}

impl StatusPoint {
    pub fn minute(&self) -> i64 {
        sfn_mackerel_message::timestamp::minute_of(self.time)
    }

    pub fn is_failure(&self) -> bool {
        status::is_failure(self.value)
    }
}

/// What to write for one job's status series after one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWrites {
    /// The graph's points at the job's time, merged with what Mackerel holds there.
    pub graph: Vec<StatusPoint>,
    /// The alert series' values at delivery time, in the order they must be
    /// posted, each in its own request after the one before succeeded.
    pub alert_steps: Vec<f64>,
}

/// Plans the writes for one job's status series.
///
/// `batch` is this batch's points (merged per minute already), `held` what
/// Mackerel holds for the series from the batch's oldest minute on (read before
/// the write), or `None` when the read failed: then the batch alone decides the
/// alert's last step (right whenever nothing newer was written meanwhile).
pub fn plan_status_writes(batch: &[StatusPoint], held: Option<&[StatusPoint]>) -> StatusWrites {
    let held = held.unwrap_or(&[]);
    let graph: Vec<StatusPoint> = batch
        .iter()
        .map(|point| {
            let held_value = held
                .iter()
                .filter(|h| h.minute() == point.minute())
                .map(|h| h.value)
                .fold(f64::NEG_INFINITY, f64::max);
            StatusPoint {
                time: point.time,
                value: point.value.max(held_value),
            }
        })
        .collect();
    let newest = graph.iter().chain(held.iter()).copied().max_by(|a, b| {
        a.minute()
            .cmp(&b.minute())
            .then(a.is_failure().cmp(&b.is_failure()))
    });
    let mut alert_steps = Vec::new();
    if batch.iter().any(StatusPoint::is_failure) {
        alert_steps.push(1.0);
    }
    if let Some(newest) = newest {
        let last = if newest.is_failure() { 1.0 } else { 0.0 };
        if alert_steps.last() != Some(&last) {
            alert_steps.push(last);
        }
    }
    StatusWrites { graph, alert_steps }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(minute: i64, value: f64) -> StatusPoint {
        StatusPoint {
            time: minute * 60 + 7,
            value,
        }
    }

    #[test]
    fn a_failure_on_time_opens_the_alert_and_leaves_it_open() {
        let writes = plan_status_writes(&[at(10, 1.0)], Some(&[at(5, 0.0)]));
        assert_eq!(writes.alert_steps, vec![1.0]);
        assert_eq!(writes.graph, vec![at(10, 1.0)]);
    }

    #[test]
    fn a_late_failure_behind_a_newer_success_opens_the_alert_then_closes_it() {
        // make_order failed at 10:00, its post met a 500; the 10:05 success came first.
        let writes = plan_status_writes(&[at(600, 1.0)], Some(&[at(605, 0.0)]));
        assert_eq!(writes.alert_steps, vec![1.0, 0.0]);
        assert_eq!(writes.graph, vec![at(600, 1.0)]);
    }

    #[test]
    fn a_late_success_behind_a_newer_failure_keeps_the_alert_open() {
        let writes = plan_status_writes(&[at(600, 0.0)], Some(&[at(605, 1.0)]));
        assert_eq!(writes.alert_steps, vec![1.0]);
    }

    #[test]
    fn a_success_in_a_minute_that_holds_a_failure_leaves_the_failure_in_the_graph() {
        let writes = plan_status_writes(&[at(600, 0.0)], Some(&[at(600, 1.0)]));
        assert_eq!(writes.graph, vec![at(600, 1.0)]);
        assert_eq!(writes.alert_steps, vec![1.0]);
    }

    #[test]
    fn without_the_read_the_batch_alone_decides() {
        let writes = plan_status_writes(&[at(600, 1.0), at(601, 0.0)], None);
        assert_eq!(writes.alert_steps, vec![1.0, 0.0]);
    }

    /// Mackerel as this module relies on it: a point not older than the series'
    /// newest is evaluated; the alert opens above the threshold, closes below it.
    #[derive(Default)]
    struct Mackerel {
        graph: std::collections::BTreeMap<i64, f64>,
        alert_newest_minute: Option<i64>,
        alert_open: bool,
        openings: usize,
    }

    impl Mackerel {
        fn post_alert(&mut self, minute: i64, value: f64) {
            if self
                .alert_newest_minute
                .is_some_and(|newest| minute < newest)
            {
                return;
            }
            self.alert_newest_minute = Some(minute);
            let open = status::is_failure(value);
            if open && !self.alert_open {
                self.openings += 1;
            }
            self.alert_open = open;
        }

        fn held_from(&self, minute: i64) -> Vec<StatusPoint> {
            self.graph
                .range(minute..)
                .map(|(m, v)| at(*m, *v))
                .collect()
        }
    }

    proptest! {
        /// Whatever order a job's results arrive in, in batches, with deliveries
        /// sharing minutes: every delivered failure is evaluated open at least
        /// once (1), and after each delivery the alert is open exactly when the
        /// newest run delivered so far, by the job's time, failed (2).
        #[test]
        fn every_failure_alerts_and_the_alert_follows_the_newest_run(
            // Results in arrival order: (the job's minute, failed), any order.
            arrivals in prop::collection::vec((0i64..30, any::<bool>()), 1..12),
            batch_sizes in prop::collection::vec(1usize..4, 12),
            arrival_gaps in prop::collection::vec(0i64..2, 12),
        ) {
            let mut pending: Vec<(i64, bool)> = arrivals;
            let mut mackerel = Mackerel::default();
            let mut delivered: Vec<(i64, bool)> = Vec::new();
            let mut arrival_minute = 100;
            let mut step = 0;
            while !pending.is_empty() {
                let size = batch_sizes[step % batch_sizes.len()].min(pending.len());
                arrival_minute += arrival_gaps[step % arrival_gaps.len()];
                step += 1;
                let batch: Vec<(i64, bool)> = pending.drain(..size).collect();
                // The batch merged per minute (max), as the grouping does.
                let mut merged: std::collections::BTreeMap<i64, f64> = Default::default();
                for (minute, failed) in &batch {
                    let value = if *failed { 1.0 } else { 0.0 };
                    let entry = merged.entry(*minute).or_insert(value);
                    *entry = entry.max(value);
                }
                let points: Vec<StatusPoint> = merged.iter().map(|(m, v)| at(*m, *v)).collect();
                let oldest = points.iter().map(StatusPoint::minute).min().unwrap();
                let held = mackerel.held_from(oldest);
                let writes = plan_status_writes(&points, Some(&held));
                for point in &writes.graph {
                    mackerel.graph.insert(point.minute(), point.value);
                }
                let openings_before = mackerel.openings;
                let was_open = mackerel.alert_open;
                for value in &writes.alert_steps {
                    mackerel.post_alert(arrival_minute, *value);
                }
                delivered.extend(&batch);
                if batch.iter().any(|(_, failed)| *failed) {
                    prop_assert!(
                        was_open || mackerel.openings > openings_before,
                        "a delivered failure did not open the alert: {batch:?} after {delivered:?}"
                    );
                }
                let newest_minute = delivered.iter().map(|(m, _)| *m).max().unwrap();
                let newest_failed = delivered.iter().any(|(m, f)| *m == newest_minute && *f);
                prop_assert_eq!(mackerel.alert_open, newest_failed, "after {:?}", delivered);
            }
        }
    }
}
