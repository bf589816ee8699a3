//! Services and their per-minute metric series: what Mackerel keeps, at the
//! resolution it keeps it, including the silent 24-hour drop.

use std::collections::BTreeMap;

use crate::validation::MetricValue;

/// Values older than this (relative to the server clock) are answered 200 and
/// dropped. Mackerel's rule, restated here on purpose rather than imported from
/// the consumer's message crate: the stand-in plays Mackerel, so a mistake in
/// what the client believes must not silently become what the server does.
pub const MAX_AGE_SECONDS: i64 = 24 * 60 * 60;
/// Values further in the future than this are answered 200 and dropped (a guess,
/// mirroring mackerel-agent; the API documents no bound).
pub const MAX_FUTURE_SECONDS: i64 = 24 * 60 * 60;

/// The start of the minute holding `time`: the key values are stored under.
pub fn minute_of(time: i64) -> i64 {
    time - time.rem_euclid(60)
}

/// One stored point, `time` being the start of its minute.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Start of the minute, Unix epoch seconds.
    pub time: i64,
    /// Latest value written for that minute.
    pub value: f64,
}

/// One metric of one service: at most one value per minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: BTreeMap<i64, f64>,
}

impl Series {
    /// Stores `value` in the minute of `time`; returns whether it replaced a value.
    pub fn write(&mut self, time: i64, value: f64) -> bool {
        self.points.insert(minute_of(time), value).is_some()
    }

    /// The newest point, if any.
    pub fn latest(&self) -> Option<Point> {
        self.points
            .iter()
            .next_back()
            .map(|(&time, &value)| Point { time, value })
    }

    /// Up to `n` newest points, newest first.
    pub fn latest_points(&self, n: usize) -> Vec<Point> {
        self.points
            .iter()
            .rev()
            .take(n)
            .map(|(&time, &value)| Point { time, value })
            .collect()
    }

    /// Points with `from <= time <= to`, oldest first.
    pub fn range(&self, from: i64, to: i64) -> Vec<Point> {
        if from > to {
            return Vec::new();
        }
        self.points
            .range(from..=to)
            .map(|(&time, &value)| Point { time, value })
            .collect()
    }

    /// Every point, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.points
            .iter()
            .map(|(&time, &value)| Point { time, value })
            .collect()
    }

    /// Number of stored minutes.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// A Mackerel service and its metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Free text.
    pub memo: String,
    /// Role names (always empty: roles are not emulated).
    pub roles: Vec<String>,
    /// Metric series by name.
    pub series: BTreeMap<String, Series>,
}

/// For one metric name touched by a post: what a monitor needs to decide
/// whether to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct TouchedSeries {
    /// Metric name.
    pub name: String,
    /// Minute of the newest value this request stored for the name.
    pub newest_minute_written: i64,
    /// Minute of the series' newest point before this request.
    pub previous_latest_minute: Option<i64>,
}

/// What a post did to the store, for counters and monitor evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOutcome {
    /// Values stored.
    pub accepted: usize,
    /// Values older than 24 hours, answered 200 and not stored.
    pub dropped_too_old: usize,
    /// Values more than 24 hours ahead, answered 200 and not stored.
    pub dropped_too_far_in_future: usize,
    /// Stored values that replaced an earlier value of the same minute.
    pub overwritten: usize,
    /// One entry per metric name that received at least one stored value.
    pub touched: Vec<TouchedSeries>,
}

/// Why a read found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotFound {
    /// The service does not exist.
    #[error("service not found: create it first (POST /api/v0/services or --service)")]
    Service,
    /// The service has no such metric.
    #[error("metric not found in this service")]
    Metric,
}

/// Creating a service that already exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {0:?} already exists")]
pub struct ServiceExists(pub String);

/// All services and their series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    services: BTreeMap<String, Service>,
}

impl Store {
    /// Adds an empty service.
    pub fn create_service(&mut self, name: &str, memo: &str) -> Result<&Service, ServiceExists> {
        if self.services.contains_key(name) {
            return Err(ServiceExists(name.to_owned()));
        }
        let service = Service {
            name: name.to_owned(),
            memo: memo.to_owned(),
            ..Service::default()
        };
        Ok(self.services.entry(name.to_owned()).or_insert(service))
    }

    /// Inserts a fully built service (used when loading a state file).
    pub fn insert_service(&mut self, service: Service) {
        self.services.insert(service.name.clone(), service);
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.get(name)
    }

    /// All services, by name.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// A series, if both the service and the metric exist.
    pub fn series(&self, service: &str, metric: &str) -> Option<&Series> {
        self.services.get(service)?.series.get(metric)
    }

    /// Stores a post's values the way Mackerel does: values outside
    /// `now - 24h ..= now + 24h` are counted and dropped, the rest are stored
    /// per minute with later writes (in request order) winning.
    pub fn write(
        &mut self,
        service: &str,
        values: &[MetricValue],
        now: i64,
    ) -> Result<WriteOutcome, NotFound> {
        let service = self.services.get_mut(service).ok_or(NotFound::Service)?;
        let mut outcome = WriteOutcome::default();
        for value in values {
            if value.time < now - MAX_AGE_SECONDS {
                outcome.dropped_too_old += 1;
                continue;
            }
            if value.time > now + MAX_FUTURE_SECONDS {
                outcome.dropped_too_far_in_future += 1;
                continue;
            }
            let series = service.series.entry(value.name.clone()).or_default();
            let previous_latest_minute = series.latest().map(|p| p.time);
            if series.write(value.time, value.value) {
                outcome.overwritten += 1;
            }
            outcome.accepted += 1;
            let minute = minute_of(value.time);
            match outcome.touched.iter_mut().find(|t| t.name == value.name) {
                Some(touched) => {
                    touched.newest_minute_written = touched.newest_minute_written.max(minute);
                }
                None => outcome.touched.push(TouchedSeries {
                    name: value.name.clone(),
                    newest_minute_written: minute,
                    previous_latest_minute,
                }),
            }
        }
        Ok(outcome)
    }

    /// Metric names of a service, sorted.
    pub fn metric_names(&self, service: &str) -> Result<Vec<String>, NotFound> {
        let service = self.services.get(service).ok_or(NotFound::Service)?;
        Ok(service.series.keys().cloned().collect())
    }

    /// Points of one metric within `from..=to`, oldest first.
    pub fn read(
        &self,
        service: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Point>, NotFound> {
        let service = self.services.get(service).ok_or(NotFound::Service)?;
        let series = service.series.get(metric).ok_or(NotFound::Metric)?;
        Ok(series.range(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_732_900_000;

    fn value(name: &str, time: i64, value: f64) -> MetricValue {
        MetricValue {
            name: name.into(),
            time,
            value,
        }
    }

    fn store_with_service() -> Store {
        let mut store = Store::default();
        store.create_service("ORG", "").expect("new service");
        store
    }

    #[test]
    fn values_are_stored_at_the_start_of_their_minute() {
        let mut store = store_with_service();
        store
            .write("ORG", &[value("m", NOW + 17, 3.0)], NOW)
            .expect("service exists");
        let points = store.read("ORG", "m", 0, i64::MAX).expect("metric exists");
        assert_eq!(
            points,
            vec![Point {
                time: minute_of(NOW + 17),
                value: 3.0
            }]
        );
    }

    #[test]
    fn a_later_write_in_the_same_minute_overwrites_the_earlier_one() {
        let mut store = store_with_service();
        let minute = minute_of(NOW);
        store
            .write("ORG", &[value("m", minute + 1, 1.0)], NOW)
            .expect("service exists");
        let outcome = store
            .write("ORG", &[value("m", minute + 59, 2.0)], NOW)
            .expect("service exists");
        assert_eq!(outcome.overwritten, 1);
        let points = store.read("ORG", "m", 0, i64::MAX).expect("metric exists");
        assert_eq!(
            points,
            vec![Point {
                time: minute,
                value: 2.0
            }]
        );
    }

    #[test]
    fn within_one_request_the_last_value_of_a_minute_wins() {
        let mut store = store_with_service();
        store
            .write("ORG", &[value("m", NOW, 5.0), value("m", NOW, 7.0)], NOW)
            .expect("service exists");
        let points = store.read("ORG", "m", 0, i64::MAX).expect("metric exists");
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].value, 7.0);
    }

    #[test]
    fn values_older_than_24_hours_are_dropped_silently() {
        let mut store = store_with_service();
        let outcome = store
            .write("ORG", &[value("m", NOW - MAX_AGE_SECONDS - 1, 1.0)], NOW)
            .expect("service exists");
        assert_eq!(outcome.dropped_too_old, 1);
        assert_eq!(outcome.accepted, 0);
        assert_eq!(store.read("ORG", "m", 0, i64::MAX), Err(NotFound::Metric));
    }

    #[test]
    fn a_value_exactly_24_hours_old_is_kept() {
        let mut store = store_with_service();
        let outcome = store
            .write("ORG", &[value("m", NOW - MAX_AGE_SECONDS, 1.0)], NOW)
            .expect("service exists");
        assert_eq!(outcome.accepted, 1);
    }

    #[test]
    fn values_more_than_24_hours_ahead_are_dropped_silently() {
        let mut store = store_with_service();
        let outcome = store
            .write(
                "ORG",
                &[value("m", NOW + MAX_FUTURE_SECONDS + 60, 1.0)],
                NOW,
            )
            .expect("service exists");
        assert_eq!(outcome.dropped_too_far_in_future, 1);
        assert!(store
            .metric_names("ORG")
            .expect("service exists")
            .is_empty());
    }

    #[test]
    fn writing_to_an_unknown_service_is_refused() {
        let mut store = Store::default();
        assert_eq!(
            store.write("NOPE", &[value("m", NOW, 1.0)], NOW),
            Err(NotFound::Service)
        );
    }

    #[test]
    fn a_touched_series_remembers_its_newest_minute_and_previous_latest() {
        let mut store = store_with_service();
        store
            .write("ORG", &[value("m", NOW - 600, 1.0)], NOW)
            .expect("service exists");
        let outcome = store
            .write(
                "ORG",
                &[value("m", NOW - 120, 1.0), value("m", NOW - 300, 0.0)],
                NOW,
            )
            .expect("service exists");
        assert_eq!(
            outcome.touched,
            vec![TouchedSeries {
                name: "m".into(),
                newest_minute_written: minute_of(NOW - 120),
                previous_latest_minute: Some(minute_of(NOW - 600)),
            }]
        );
    }

    #[test]
    fn reads_are_limited_to_the_requested_range_oldest_first() {
        let mut store = store_with_service();
        let base = minute_of(NOW);
        store
            .write(
                "ORG",
                &[
                    value("m", base, 3.0),
                    value("m", base - 120, 1.0),
                    value("m", base - 60, 2.0),
                ],
                NOW,
            )
            .expect("service exists");
        let points = store
            .read("ORG", "m", base - 60, base)
            .expect("metric exists");
        assert_eq!(
            points,
            vec![
                Point {
                    time: base - 60,
                    value: 2.0
                },
                Point {
                    time: base,
                    value: 3.0
                }
            ]
        );
    }

    #[test]
    fn creating_a_service_twice_is_refused() {
        let mut store = store_with_service();
        assert!(store.create_service("ORG", "").is_err());
    }
}
