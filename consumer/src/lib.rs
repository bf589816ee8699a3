//! The consumer: drains SQS batches of job results into grouped Mackerel
//! service-metric posts, parks what cannot be posted in a DLQ with the reason,
//! and reports only the messages that must come back.
//!
//! Pure logic (grouping, chunking, retry decisions, outcomes) lives apart from
//! I/O (HTTP to Mackerel, SQS, Secrets Manager) so it is tested without servers.

pub mod alerting;
pub mod api_key;
pub mod chunking;
pub mod config;
pub mod delivery;
pub mod dlq;
pub mod grouping;
pub mod handler;
pub mod inbound;
pub mod lambda;
pub mod mackerel;
pub mod outcome;
pub mod pipeline_metrics;
pub mod posting;
pub mod retry;
pub mod runner;
pub mod startup;
pub mod status_posting;
pub mod summary;

pub use handler::{BatchReport, Consumer};
pub use inbound::InboundMessage;
pub use outcome::Fate;
pub use summary::BatchSummary;
