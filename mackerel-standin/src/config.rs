//! What a stand-in starts with: where it listens, the organisation's keys, the
//! services that exist, the faults to inject and where to keep its state.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::StartError;
use crate::faults::FaultConfig;
use crate::validation::is_valid_service_name;

/// Start-up settings. `Config::default()` listens on `127.0.0.1:0` (a free
/// port) with no keys; add at least one key and usually one service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind; loopback by default.
    pub listen: SocketAddr,
    /// Read-write API keys (may post).
    pub api_keys: Vec<String>,
    /// Read-only API keys (may read, posting is 403).
    pub read_only_api_keys: Vec<String>,
    /// Services that exist from the start.
    pub services: Vec<String>,
    /// Faults and limits in force from the start (`faults.seed` seeds them).
    pub faults: FaultConfig,
    /// JSON file loaded at start (if present) and saved after changes and at shutdown.
    pub state_file: Option<PathBuf>,
    /// How often interruption (missing-data) monitors are re-checked in the background.
    pub missing_check_interval: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_keys: Vec::new(),
            read_only_api_keys: Vec::new(),
            services: Vec::new(),
            faults: FaultConfig::default(),
            state_file: None,
            missing_check_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Defaults: loopback, free port, no keys, no services, no faults.
    pub fn new() -> Self {
        Config::default()
    }

    /// Sets the address to bind.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Adds a read-write API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// Adds a read-only API key.
    pub fn with_read_only_api_key(mut self, key: impl Into<String>) -> Self {
        self.read_only_api_keys.push(key.into());
        self
    }

    /// Adds a service that exists from the start.
    pub fn with_service(mut self, name: impl Into<String>) -> Self {
        self.services.push(name.into());
        self
    }

    /// Replaces the fault settings.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Seeds the fault randomness so a test sees the same faults every run.
    pub fn with_fault_seed(mut self, seed: u64) -> Self {
        self.faults.seed = Some(seed);
        self
    }

    /// Persists data to this JSON file.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Checks the settings before anything is bound.
    pub fn validate(&self) -> Result<(), StartError> {
        if self.api_keys.is_empty() && self.read_only_api_keys.is_empty() {
            return Err(StartError::Config(
                "no API key configured: pass --api-key KEY (Config::with_api_key)".into(),
            ));
        }
        if self
            .api_keys
            .iter()
            .chain(&self.read_only_api_keys)
            .any(|k| k.trim().is_empty())
        {
            return Err(StartError::Config("an API key is empty".into()));
        }
        if let Some(bad) = self.services.iter().find(|s| !is_valid_service_name(s)) {
            return Err(StartError::Config(format!(
                "service name {bad:?} is invalid: use 2 to 63 letters, digits, '_' or '-', not starting with '_' or '-'"
            )));
        }
        self.faults
            .validate()
            .map_err(|e| StartError::Config(e.to_string()))?;
        if self.missing_check_interval.is_zero() {
            return Err(StartError::Config(
                "missing_check_interval must be positive".into(),
            ));
        }
        Ok(())
    }
}
