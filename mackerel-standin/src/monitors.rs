//! Service-metric monitors and their alerts: when Mackerel evaluates, what it
//! compares, and when an alert opens, changes status or closes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{Series, Store, TouchedSeries};
use crate::validation::{MonitorDefinition, Operator};

/// A threshold monitor does not evaluate when the series' newest point is older
/// than this (Mackerel: "about 20 minutes").
pub const STALE_AFTER_SECONDS: i64 = 20 * 60;

/// Monitor and alert status, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Within thresholds.
    #[default]
    Ok,
    /// Warning threshold crossed.
    Warning,
    /// Critical threshold crossed.
    Critical,
}

/// A stored service-metric monitor, serialised the way Mackerel returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitor {
    /// Identifier returned on creation.
    pub id: String,
    /// Always `"service"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Optional note.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memo: Option<String>,
    /// Service watched.
    pub service: String,
    /// Metric watched.
    pub metric: String,
    /// `>` or `<`.
    pub operator: Operator,
    /// Warning threshold.
    pub warning: Option<f64>,
    /// Critical threshold.
    pub critical: Option<f64>,
    /// Latest points averaged.
    pub duration: u32,
    /// Consecutive breaching evaluations before an alert opens.
    pub max_check_attempts: u32,
    /// Minutes without data before a warning interruption alert.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub missing_duration_warning: Option<u32>,
    /// Minutes without data before a critical interruption alert.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub missing_duration_critical: Option<u32>,
    /// Echoed only; no notifications are sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification_interval: Option<u32>,
    /// Echoed only.
    #[serde(default)]
    pub is_mute: bool,
    /// When the stand-in created it (not a Mackerel field; used as the start of
    /// the interruption clock for a series that never had data).
    pub created_at: i64,
}

/// What the stand-in remembers between evaluations of one monitor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorState {
    /// Breaching evaluations in a row.
    pub consecutive_breaches: u32,
    /// Status from thresholds, after `maxCheckAttempts`.
    pub threshold_status: Status,
    /// Status from missing data.
    pub missing_status: Status,
    /// Averaged value of the latest evaluation.
    pub last_value: Option<f64>,
    /// When thresholds were last evaluated.
    pub last_evaluated_at: Option<i64>,
}

impl MonitorState {
    /// The monitor's overall status: the worse of thresholds and missing data.
    pub fn status(&self) -> Status {
        self.threshold_status.max(self.missing_status)
    }
}

/// An alert, serialised the way Mackerel lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Identifier.
    pub id: String,
    /// `WARNING` or `CRITICAL` while open, `OK` once closed.
    pub status: Status,
    /// Monitor that raised it.
    pub monitor_id: String,
    /// Always `"service"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Averaged value that breached (absent for an interruption alert).
    pub value: Option<f64>,
    /// Human-readable reason.
    pub message: String,
    /// Unix epoch seconds.
    pub opened_at: i64,
    /// Unix epoch seconds, once closed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub closed_at: Option<i64>,
}

impl Alert {
    /// Whether the alert is still open.
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// Why a threshold evaluation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Every value posted for the metric was older than the series' newest point.
    OlderThanLatest,
    /// The series' newest point is more than 20 minutes old.
    LatestTooOld,
    /// Fewer points than `duration` exist.
    NotEnoughPoints,
}

/// Result of evaluating one monitor's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evaluation {
    /// Evaluated: the status of the averaged value.
    Evaluated {
        /// Status of `value`.
        status: Status,
        /// Average of the latest `duration` points.
        value: f64,
    },
    /// Not evaluated.
    Skipped(Skip),
}

/// Compares a value with the thresholds; critical wins over warning.
pub fn classify(
    operator: Operator,
    warning: Option<f64>,
    critical: Option<f64>,
    value: f64,
) -> Status {
    let breaches = |threshold: f64| match operator {
        Operator::Greater => value > threshold,
        Operator::Less => value < threshold,
    };
    if critical.is_some_and(breaches) {
        Status::Critical
    } else if warning.is_some_and(breaches) {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// Evaluates thresholds after a post touched the series, as Mackerel does: on
/// the latest `duration` points, only when the post reached the newest minute
/// and that minute is recent.
pub fn evaluate_threshold(
    monitor: &Monitor,
    series: &Series,
    touched: &TouchedSeries,
    now: i64,
) -> Evaluation {
    if touched
        .previous_latest_minute
        .is_some_and(|previous| touched.newest_minute_written < previous)
    {
        return Evaluation::Skipped(Skip::OlderThanLatest);
    }
    let Some(latest) = series.latest() else {
        return Evaluation::Skipped(Skip::NotEnoughPoints);
    };
    if now - latest.time > STALE_AFTER_SECONDS {
        return Evaluation::Skipped(Skip::LatestTooOld);
    }
    let duration = monitor.duration.max(1) as usize;
    let points = series.latest_points(duration);
    if points.len() < duration {
        return Evaluation::Skipped(Skip::NotEnoughPoints);
    }
    let value = points.iter().map(|p| p.value).sum::<f64>() / points.len() as f64;
    Evaluation::Evaluated {
        status: classify(monitor.operator, monitor.warning, monitor.critical, value),
        value,
    }
}

/// Interruption status: how long since the newest point (or, with no data at
/// all, since the monitor was created).
pub fn missing_status(monitor: &Monitor, latest_time: Option<i64>, now: i64) -> Status {
    let silent_for = now - latest_time.unwrap_or(monitor.created_at);
    let exceeded = |minutes: Option<u32>| minutes.is_some_and(|m| silent_for > i64::from(m) * 60);
    if exceeded(monitor.missing_duration_critical) {
        Status::Critical
    } else if exceeded(monitor.missing_duration_warning) {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// Monitors, their evaluation state and every alert ever raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    monitors: Vec<Monitor>,
    #[serde(rename = "monitorStates")]
    states: BTreeMap<String, MonitorState>,
    alerts: Vec<Alert>,
    next_id: u64,
}

/// Turns a counter into an 11-character id shaped like Mackerel's.
fn make_id(prefix: char, n: u64) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits = Vec::with_capacity(10);
    let mut rest = n;
    for _ in 0..10 {
        digits.push(ALPHABET[(rest % 58) as usize] as char);
        rest /= 58;
    }
    digits.reverse();
    std::iter::once(prefix).chain(digits).collect()
}

impl Monitoring {
    /// Creates a monitor from a validated definition.
    pub fn add(&mut self, def: MonitorDefinition, now: i64) -> Monitor {
        self.next_id += 1;
        let monitor = Monitor {
            id: make_id('m', self.next_id),
            kind: "service".to_owned(),
            name: def.name,
            memo: def.memo,
            service: def.service,
            metric: def.metric,
            operator: def.operator,
            warning: def.warning,
            critical: def.critical,
            duration: def.duration,
            max_check_attempts: def.max_check_attempts,
            missing_duration_warning: def.missing_duration_warning,
            missing_duration_critical: def.missing_duration_critical,
            notification_interval: def.notification_interval,
            is_mute: def.is_mute,
            created_at: now,
        };
        self.states
            .insert(monitor.id.clone(), MonitorState::default());
        self.monitors.push(monitor.clone());
        monitor
    }

    /// All monitors, in creation order.
    pub fn monitors(&self) -> &[Monitor] {
        &self.monitors
    }

    /// One monitor.
    pub fn monitor(&self, id: &str) -> Option<&Monitor> {
        self.monitors.iter().find(|m| m.id == id)
    }

    /// The evaluation state of a monitor.
    pub fn state(&self, id: &str) -> Option<&MonitorState> {
        self.states.get(id)
    }

    /// Deletes a monitor, closing its open alert.
    pub fn delete(&mut self, id: &str, now: i64) -> Option<Monitor> {
        let index = self.monitors.iter().position(|m| m.id == id)?;
        let monitor = self.monitors.remove(index);
        self.states.remove(id);
        for alert in self
            .alerts
            .iter_mut()
            .filter(|a| a.monitor_id == id && a.is_open())
        {
            alert.status = Status::Ok;
            alert.closed_at = Some(now);
        }
        Some(monitor)
    }

    /// Every alert, oldest first.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// Evaluates every monitor of `service` whose metric a post touched.
    pub fn on_write(&mut self, store: &Store, service: &str, touched: &[TouchedSeries], now: i64) {
        for index in 0..self.monitors.len() {
            let monitor = &self.monitors[index];
            if monitor.service != service {
                continue;
            }
            let Some(touch) = touched.iter().find(|t| t.name == monitor.metric) else {
                continue;
            };
            let Some(series) = store.series(service, &monitor.metric) else {
                continue;
            };
            let evaluation = evaluate_threshold(monitor, series, touch, now);
            let missing = missing_status(monitor, series.latest().map(|p| p.time), now);
            let attempts = monitor.max_check_attempts;
            let id = monitor.id.clone();
            let state = self.states.entry(id).or_default();
            state.missing_status = missing;
            if let Evaluation::Evaluated { status, value } = evaluation {
                state.last_value = Some(value);
                state.last_evaluated_at = Some(now);
                if status == Status::Ok {
                    state.consecutive_breaches = 0;
                    state.threshold_status = Status::Ok;
                } else {
                    state.consecutive_breaches = state.consecutive_breaches.saturating_add(1);
                    if state.consecutive_breaches >= attempts {
                        state.threshold_status = status;
                    }
                }
            }
            self.reconcile(index, now);
        }
    }

    /// Re-checks every interruption monitor against the clock.
    pub fn check_missing(&mut self, store: &Store, now: i64) {
        for index in 0..self.monitors.len() {
            let monitor = &self.monitors[index];
            if monitor.missing_duration_warning.is_none()
                && monitor.missing_duration_critical.is_none()
            {
                continue;
            }
            let latest = store
                .series(&monitor.service, &monitor.metric)
                .and_then(Series::latest)
                .map(|p| p.time);
            let missing = missing_status(monitor, latest, now);
            let id = monitor.id.clone();
            let state = self.states.entry(id).or_default();
            if state.missing_status != missing {
                state.missing_status = missing;
                self.reconcile(index, now);
            }
        }
    }

    /// Opens, updates or closes the monitor's alert to match its status.
    fn reconcile(&mut self, index: usize, now: i64) {
        let monitor = &self.monitors[index];
        let state = self.states.get(&monitor.id).cloned().unwrap_or_default();
        let status = state.status();
        let from_threshold = state.threshold_status >= state.missing_status;
        let (value, message) = if from_threshold {
            let value = state.last_value;
            let shown = value.map(|v| v.to_string()).unwrap_or_default();
            (
                value,
                format!(
                    "{} {} {} (average of the latest {} point(s)) on {}/{}",
                    shown,
                    match monitor.operator {
                        Operator::Greater => ">",
                        Operator::Less => "<",
                    },
                    match status {
                        Status::Critical => monitor.critical,
                        _ => monitor.warning,
                    }
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                    monitor.duration,
                    monitor.service,
                    monitor.metric
                ),
            )
        } else {
            (
                None,
                format!(
                    "no data for {}/{} for more than {} minutes",
                    monitor.service,
                    monitor.metric,
                    match status {
                        Status::Critical => monitor.missing_duration_critical,
                        _ => monitor.missing_duration_warning,
                    }
                    .unwrap_or_default()
                ),
            )
        };
        let monitor_id = monitor.id.clone();
        let open = self
            .alerts
            .iter_mut()
            .find(|a| a.monitor_id == monitor_id && a.is_open());
        match (open, status) {
            (Some(alert), Status::Ok) => {
                alert.status = Status::Ok;
                alert.closed_at = Some(now);
            }
            (Some(alert), status) => {
                alert.status = status;
                alert.value = value;
                alert.message = message;
            }
            (None, Status::Ok) => {}
            (None, status) => {
                self.next_id += 1;
                self.alerts.push(Alert {
                    id: make_id('a', self.next_id),
                    status,
                    monitor_id,
                    kind: "service".to_owned(),
                    value,
                    message,
                    opened_at: now,
                    closed_at: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::minute_of;
    use crate::validation::MetricValue;

    const NOW: i64 = 1_732_900_000;

    fn definition(
        operator: Operator,
        warning: Option<f64>,
        critical: Option<f64>,
        duration: u32,
    ) -> MonitorDefinition {
        MonitorDefinition {
            name: "etl failures".into(),
            memo: None,
            service: "ORG".into(),
            metric: "job.etl.failed".into(),
            operator,
            warning,
            critical,
            duration,
            max_check_attempts: 1,
            missing_duration_warning: None,
            missing_duration_critical: None,
            notification_interval: None,
            is_mute: false,
        }
    }

    struct World {
        store: Store,
        monitoring: Monitoring,
    }

    impl World {
        fn new(def: MonitorDefinition) -> Self {
            let mut store = Store::default();
            store.create_service("ORG", "").expect("new service");
            let mut monitoring = Monitoring::default();
            monitoring.add(def, NOW - 3600);
            World { store, monitoring }
        }

        fn post(&mut self, values: &[(i64, f64)], now: i64) {
            let values: Vec<MetricValue> = values
                .iter()
                .map(|&(time, value)| MetricValue {
                    name: "job.etl.failed".into(),
                    time,
                    value,
                })
                .collect();
            let outcome = self
                .store
                .write("ORG", &values, now)
                .expect("service exists");
            self.monitoring
                .on_write(&self.store, "ORG", &outcome.touched, now);
        }

        fn open_alerts(&self) -> Vec<&Alert> {
            self.monitoring
                .alerts()
                .iter()
                .filter(|a| a.is_open())
                .collect()
        }
    }

    #[test]
    fn critical_wins_over_warning_when_both_are_crossed() {
        assert_eq!(
            classify(Operator::Greater, Some(1.0), Some(2.0), 3.0),
            Status::Critical
        );
        assert_eq!(
            classify(Operator::Greater, Some(1.0), Some(2.0), 1.5),
            Status::Warning
        );
        assert_eq!(
            classify(Operator::Greater, Some(1.0), Some(2.0), 1.0),
            Status::Ok
        );
        assert_eq!(
            classify(Operator::Less, None, Some(2.0), 1.0),
            Status::Critical
        );
    }

    #[test]
    fn a_failure_point_opens_a_critical_alert() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        world.post(&[(NOW, 1.0)], NOW);
        let open = world.open_alerts();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, Status::Critical);
        assert_eq!(open[0].value, Some(1.0));
        assert_eq!(open[0].opened_at, NOW);
    }

    #[test]
    fn a_return_below_the_threshold_closes_the_alert() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        world.post(&[(NOW, 1.0)], NOW);
        world.post(&[(NOW + 60, 0.0)], NOW + 60);
        assert!(world.open_alerts().is_empty());
        let closed = &world.monitoring.alerts()[0];
        assert_eq!(closed.status, Status::Ok);
        assert_eq!(closed.closed_at, Some(NOW + 60));
    }

    #[test]
    fn only_the_newest_point_of_a_request_is_evaluated() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        world.post(&[(NOW - 60, 1.0), (NOW, 0.0)], NOW);
        assert!(world.open_alerts().is_empty());
    }

    #[test]
    fn a_duration_averages_the_latest_points_and_catches_an_earlier_failure() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.4), 2));
        world.post(&[(NOW - 60, 1.0), (NOW, 0.0)], NOW);
        let open = world.open_alerts();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].value, Some(0.5));
    }

    #[test]
    fn fewer_points_than_the_duration_are_not_evaluated() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 3));
        world.post(&[(NOW - 60, 1.0), (NOW, 1.0)], NOW);
        assert!(world.open_alerts().is_empty());
    }

    #[test]
    fn a_value_older_than_the_latest_point_triggers_no_evaluation() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        world.post(&[(NOW, 0.0)], NOW);
        world.post(&[(NOW - 300, 1.0)], NOW + 1);
        assert!(world.open_alerts().is_empty());
    }

    #[test]
    fn a_series_whose_latest_point_is_over_20_minutes_old_is_not_evaluated() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        world.post(&[(NOW - 21 * 60, 1.0)], NOW);
        assert!(world.open_alerts().is_empty());
    }

    #[test]
    fn overwriting_the_latest_minute_is_evaluated() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        let minute = minute_of(NOW);
        world.post(&[(minute, 0.0)], NOW);
        world.post(&[(minute + 30, 1.0)], NOW);
        assert_eq!(world.open_alerts().len(), 1);
    }

    #[test]
    fn an_alert_escalates_from_warning_to_critical_without_a_second_alert() {
        let mut world = World::new(definition(Operator::Greater, Some(1.0), Some(5.0), 1));
        world.post(&[(NOW, 2.0)], NOW);
        world.post(&[(NOW + 60, 9.0)], NOW + 60);
        let open = world.open_alerts();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, Status::Critical);
        assert_eq!(world.monitoring.alerts().len(), 1);
    }

    #[test]
    fn max_check_attempts_delays_the_alert_until_consecutive_breaches() {
        let mut def = definition(Operator::Greater, None, Some(0.5), 1);
        def.max_check_attempts = 2;
        let mut world = World::new(def);
        world.post(&[(NOW, 1.0)], NOW);
        assert!(world.open_alerts().is_empty());
        world.post(&[(NOW + 60, 1.0)], NOW + 60);
        assert_eq!(world.open_alerts().len(), 1);
    }

    #[test]
    fn an_interruption_alert_opens_after_the_missing_duration_and_closes_on_new_data() {
        let mut def = definition(Operator::Greater, None, None, 1);
        def.missing_duration_critical = Some(10);
        let mut world = World::new(def);
        world.post(&[(NOW, 0.0)], NOW);
        world.monitoring.check_missing(&world.store, NOW + 9 * 60);
        assert!(world.open_alerts().is_empty());
        world.monitoring.check_missing(&world.store, NOW + 11 * 60);
        let open = world.open_alerts();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, Status::Critical);
        assert_eq!(open[0].value, None);
        world.post(&[(NOW + 12 * 60, 0.0)], NOW + 12 * 60);
        assert!(world.open_alerts().is_empty());
    }

    #[test]
    fn an_interruption_monitor_without_any_data_counts_from_its_creation() {
        let mut def = definition(Operator::Greater, None, None, 1);
        def.missing_duration_warning = Some(10);
        let mut world = World::new(def);
        world
            .monitoring
            .check_missing(&world.store, NOW - 3600 + 11 * 60);
        assert_eq!(world.open_alerts()[0].status, Status::Warning);
    }

    #[test]
    fn deleting_a_monitor_closes_its_alert() {
        let mut world = World::new(definition(Operator::Greater, None, Some(0.5), 1));
        world.post(&[(NOW, 1.0)], NOW);
        let id = world.monitoring.monitors()[0].id.clone();
        assert!(world.monitoring.delete(&id, NOW + 5).is_some());
        assert!(world.open_alerts().is_empty());
    }

    #[test]
    fn ids_are_eleven_characters_and_unique() {
        assert_eq!(make_id('m', 1).len(), 11);
        assert_ne!(make_id('m', 1), make_id('m', 2));
    }
}
