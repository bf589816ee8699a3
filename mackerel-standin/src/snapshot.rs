//! Everything stored as one JSON document: the admin dump and the state file
//! share this format, so a demo's results survive a restart.

use serde::{Deserialize, Serialize};

use crate::monitors::Monitoring;
use crate::store::{Point, Service, Store};

/// One metric and all its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSnapshot {
    /// Metric name.
    pub name: String,
    /// Points, oldest first, `time` being the start of the minute.
    pub points: Vec<Point>,
}

/// One service and its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    /// Service name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub memo: String,
    /// Roles (always empty).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Metrics by name.
    #[serde(default)]
    pub metrics: Vec<MetricSnapshot>,
}

/// Everything the stand-in stores: services, series, monitors, alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Services, by name.
    #[serde(default)]
    pub services: Vec<ServiceSnapshot>,
    /// Monitors, their evaluation state and alerts (`monitors`,
    /// `monitorStates`, `alerts`, `nextId`).
    #[serde(flatten)]
    pub monitoring: Monitoring,
}

impl Snapshot {
    /// Captures the current data.
    pub fn capture(store: &Store, monitoring: &Monitoring) -> Self {
        Snapshot {
            services: store
                .services()
                .map(|service| ServiceSnapshot {
                    name: service.name.clone(),
                    memo: service.memo.clone(),
                    roles: service.roles.clone(),
                    metrics: service
                        .series
                        .iter()
                        .map(|(name, series)| MetricSnapshot {
                            name: name.clone(),
                            points: series.points(),
                        })
                        .collect(),
                })
                .collect(),
            monitoring: monitoring.clone(),
        }
    }

    /// Points of one metric, for assertions (empty when absent).
    pub fn points(&self, service: &str, metric: &str) -> Vec<Point> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .and_then(|s| s.metrics.iter().find(|m| m.name == metric))
            .map(|m| m.points.clone())
            .unwrap_or_default()
    }

    /// Rebuilds the store and monitors.
    pub fn restore(self) -> (Store, Monitoring) {
        let mut store = Store::default();
        for service in self.services {
            let mut restored = Service {
                name: service.name,
                memo: service.memo,
                roles: service.roles,
                ..Service::default()
            };
            for metric in service.metrics {
                let series = restored.series.entry(metric.name).or_default();
                for point in metric.points {
                    series.write(point.time, point.value);
                }
            }
            store.insert_service(restored);
        }
        (store, self.monitoring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::MetricValue;

    #[test]
    fn a_snapshot_restores_the_same_data() {
        let mut store = Store::default();
        store.create_service("ORG", "memo").expect("new service");
        store
            .write(
                "ORG",
                &[MetricValue {
                    name: "m".into(),
                    time: 1_732_900_020,
                    value: 2.5,
                }],
                1_732_900_000,
            )
            .expect("service exists");
        let monitoring = Monitoring::default();
        let json =
            serde_json::to_string(&Snapshot::capture(&store, &monitoring)).expect("serialisable");
        let parsed: Snapshot = serde_json::from_str(&json).expect("parsable");
        let (restored, _) = parsed.restore();
        assert_eq!(restored, store);
    }
}
