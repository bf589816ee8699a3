//! A local stand-in for the part of the Mackerel API this pipeline uses:
//! service metrics, services, service-metric monitors and alerts, plus fault
//! injection, counters, a dump and an HTML page. Tests start it in-process
//! with [`StandIn::start`]; the `mackerel-standin` binary runs it from flags.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mackerel_standin::{Config, StandIn};
//! let standin = StandIn::start(Config::new().with_api_key("KEY").with_service("ORG")).await?;
//! let base_url = standin.base_url(); // give this to the client under test
//! # let _ = base_url;
//! standin.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod counters;
pub mod error;
pub mod faults;
pub mod gate;
pub mod monitors;
pub mod page;
pub mod persistence;
pub mod server;
pub mod snapshot;
mod state;
pub mod store;
pub mod validation;

pub use config::Config;
pub use counters::Counters;
pub use error::{ShutdownError, StartError};
pub use faults::{FaultConfig, InvalidFaults};
pub use monitors::{Alert, Monitor, Status};
pub use server::{RunningStandIn, StandIn};
pub use snapshot::Snapshot;
pub use store::Point;
