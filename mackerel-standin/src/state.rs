//! The one state shared by every handler: stored data, fault settings,
//! counters and keys, each behind its own short-held lock.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};

use crate::auth::ApiKeys;
use crate::counters::Counters;
use crate::faults::{decide, FaultConfig, FaultDecision, RateLimiter};
use crate::monitors::Monitoring;
use crate::snapshot::Snapshot;
use crate::store::Store;

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Resolves once shutdown has been signalled (or the signal's sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` must not live across an await.
    let _ = shutdown.wait_for(|stopping| *stopping).await.map(|_| ());
}

/// Services, series, monitors and alerts.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub store: Store,
    pub monitoring: Monitoring,
}

/// Fault settings with their random source and rate-limit windows.
#[derive(Debug)]
pub(crate) struct FaultRuntime {
    pub config: FaultConfig,
    pub rng: StdRng,
    pub limiter: RateLimiter,
}

impl FaultRuntime {
    /// Starts from a config whose `seed` is set.
    pub fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed.unwrap_or_default());
        FaultRuntime {
            config,
            rng,
            limiter: RateLimiter::default(),
        }
    }
}

/// Everything handlers share.
pub(crate) struct Shared {
    pub data: Mutex<Data>,
    pub faults: Mutex<FaultRuntime>,
    pub counters: Mutex<Counters>,
    pub keys: ApiKeys,
    pub initial_services: Vec<String>,
    pub shutdown: watch::Receiver<bool>,
    pub changed: Notify,
}

/// Locks a mutex even if a panicking thread poisoned it: the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultRuntime> {
        lock(&self.faults)
    }

    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        lock(&self.counters)
    }

    /// Asks the state-file saver (if any) to save soon.
    pub fn mark_changed(&self) {
        self.changed.notify_one();
    }

    /// The fault settings now in force.
    pub fn fault_config(&self) -> FaultConfig {
        self.faults().config.clone()
    }

    /// Draws the fault for one request (always two draws, so a seeded run is
    /// reproducible whatever the settings).
    pub fn draw_fault(&self, config: &FaultConfig) -> FaultDecision {
        let mut faults = self.faults();
        let draw: f64 = faults.rng.random();
        let retry_after_draw: f64 = faults.rng.random();
        decide(config, draw, retry_after_draw)
    }

    /// Replaces the fault settings; a new seed restarts the random sequence.
    pub fn set_faults(&self, mut config: FaultConfig) {
        let mut faults = self.faults();
        match config.seed {
            Some(seed) => faults.rng = StdRng::seed_from_u64(seed),
            None => config.seed = faults.config.seed,
        }
        faults.config = config;
    }

    /// Re-checks interruption monitors and returns everything stored.
    pub fn snapshot(&self, now: i64) -> Snapshot {
        let mut data = self.data();
        let Data { store, monitoring } = &mut *data;
        let alerts_before = monitoring.alerts().to_vec();
        monitoring.check_missing(store, now);
        let changed = monitoring.alerts() != alerts_before.as_slice();
        let snapshot = Snapshot::capture(store, monitoring);
        drop(data);
        if changed {
            self.mark_changed();
        }
        snapshot
    }

    /// Re-checks interruption monitors.
    pub fn check_missing(&self, now: i64) {
        let mut data = self.data();
        let Data { store, monitoring } = &mut *data;
        let before = monitoring.alerts().len();
        let statuses_before: Vec<_> = monitoring.alerts().iter().map(|a| a.status).collect();
        monitoring.check_missing(store, now);
        let after: Vec<_> = monitoring.alerts().iter().map(|a| a.status).collect();
        drop(data);
        if before != after.len() || statuses_before != after {
            self.mark_changed();
        }
    }

    /// Clears data and counters back to the configured services; faults stay.
    pub fn reset(&self) {
        {
            let mut data = self.data();
            *data = Data::default();
            for name in &self.initial_services {
                // The names were validated at start and the store is empty.
                let _ = data.store.create_service(name, "");
            }
        }
        *self.counters() = Counters::default();
        self.faults().limiter.clear();
        self.mark_changed();
    }

    /// Sleeps unless shutdown starts first; returns false on shutdown.
    pub async fn sleep_unless_shutdown(&self, duration: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = stopped(&mut shutdown) => false,
        }
    }
}
