//! Starting and stopping: binds the listener, wires routes, runs background
//! tasks (interruption checks, state saving) and shuts all of it down cleanly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::api;
use crate::auth::ApiKeys;
use crate::config::Config;
use crate::counters::Counters;
use crate::error::{ShutdownError, StartError};
use crate::faults::{FaultConfig, InvalidFaults, MAX_BODY_BYTES_LIMIT};
use crate::page;
use crate::persistence;
use crate::snapshot::Snapshot;
use crate::state::{stopped, unix_now, Data, FaultRuntime, Shared};
use crate::{admin, gate};

/// Entry point for starting a stand-in in-process.
pub struct StandIn;

impl StandIn {
    /// Loads the state file (if any), creates the configured services, binds
    /// `config.listen` and serves until [`RunningStandIn::shutdown`].
    pub async fn start(config: Config) -> Result<RunningStandIn, StartError> {
        config.validate()?;
        let mut data = Data::default();
        if let Some(path) = &config.state_file {
            if let Some(snapshot) = persistence::load(path)? {
                let (store, monitoring) = snapshot.restore();
                data = Data { store, monitoring };
                tracing::info!(path = %path.display(), "state file loaded");
            }
        }
        for name in &config.services {
            if data.store.service(name).is_none() {
                let _ = data.store.create_service(name, "");
            }
        }
        let mut faults = config.faults.clone();
        let seed = *faults.seed.get_or_insert_with(rand::random);

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "listening on a non-loopback address: anyone who can reach it can read and write");
        }

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            data: Mutex::new(data),
            faults: Mutex::new(FaultRuntime::new(faults)),
            counters: Mutex::new(Counters::default()),
            keys: ApiKeys::new(&config.api_keys, &config.read_only_api_keys),
            initial_services: config.services.clone(),
            shutdown: shutdown_rx.clone(),
            changed: Notify::new(),
        });

        let app = router(shared.clone());
        let mut server_shutdown = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    stopped(&mut server_shutdown).await;
                })
                .await
        });

        let checker = tokio::spawn(check_missing_periodically(
            shared.clone(),
            config.missing_check_interval,
            shutdown_rx.clone(),
        ));
        let saver = config.state_file.clone().map(|path| {
            tokio::spawn(persistence::run_saver(
                shared.clone(),
                path,
                shutdown_rx.clone(),
            ))
        });

        tracing::info!(url = %format!("http://{addr}"), fault_seed = seed, "Mackerel stand-in listening");
        Ok(RunningStandIn {
            addr,
            shared,
            shutdown_tx,
            shutdown_grace: config.shutdown_grace,
            server: Some(server),
            checker: Some(checker),
            saver,
        })
    }
}

/// Every route, behind the counting/fault layer.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page_handler))
        .merge(api::routes())
        .merge(admin::routes())
        .route("/api/{*rest}", axum::routing::any(api::not_emulated))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            gate::gate,
        ))
        .with_state(shared)
}

async fn page_handler(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(page::render(&shared.snapshot(unix_now())))
}

async fn check_missing_periodically(
    shared: Arc<Shared>,
    interval: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => shared.check_missing(unix_now()),
            _ = stopped(&mut shutdown) => break,
        }
    }
}

type ServerTask = JoinHandle<std::io::Result<()>>;

/// A stand-in serving on `addr()`. Dropping it signals shutdown; call
/// [`RunningStandIn::shutdown`] to wait for it and for the final state save.
pub struct RunningStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    shutdown_grace: std::time::Duration,
    server: Option<ServerTask>,
    checker: Option<JoinHandle<()>>,
    saver: Option<JoinHandle<Result<(), ShutdownError>>>,
}

impl RunningStandIn {
    /// The bound address (with the real port when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, without a trailing slash: the Mackerel base URL to give a client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Current counters (same as `GET /_standin/counters`).
    pub fn counters(&self) -> Counters {
        self.shared.counters().clone()
    }

    /// Everything stored (same as `GET /_standin/dump`).
    pub fn dump(&self) -> Snapshot {
        self.shared.snapshot(unix_now())
    }

    /// The fault settings in force.
    pub fn faults(&self) -> FaultConfig {
        self.shared.fault_config()
    }

    /// Replaces the fault settings (same as `PUT /_standin/faults`).
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), InvalidFaults> {
        faults.validate()?;
        self.shared.set_faults(faults);
        Ok(())
    }

    /// Clears data and counters (same as `POST /_standin/reset`).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting requests, ends held (hanging) requests, waits up to the
    /// shutdown grace for in-flight ones, and saves the state file.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        let _ = self.shutdown_tx.send(true);
        let mut result = Ok(());
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(self.shutdown_grace, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => result = Err(ShutdownError::Server(e.to_string())),
                Ok(Err(e)) => result = Err(ShutdownError::Server(e.to_string())),
                Err(_) => {
                    tracing::warn!("in-flight requests outlived the shutdown grace; dropping them");
                    server.abort();
                }
            }
        }
        if let Some(checker) = self.checker.take() {
            let _ = checker.await;
        }
        if let Some(saver) = self.saver.take() {
            match saver.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = result.and(Err(e)),
                Err(e) => result = result.and(Err(ShutdownError::Server(e.to_string()))),
            }
        }
        tracing::info!("Mackerel stand-in stopped");
        result
    }
}

impl Drop for RunningStandIn {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}
