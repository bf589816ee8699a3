//! Dev-only: one way for every test and bench to stand up the local world and
//! to fake what they do not run. `local` talks to moto server (SQS, Secrets
//! Manager) on loopback and starts the Mackerel stand-in, with the Terraform
//! module's settings as defaults; `doubles` holds the consumer's in-memory
//! Mackerel and DLQ for tests that need no server; `runtime_api` plays the
//! Lambda service for the real binary; `batches` feeds the handler as an event
//! source mapping does, for the benches that count what a design costs;
//! `events` builds the EventBridge events from AWS's samples.

pub mod batches;
pub mod doubles;
pub mod events;
pub mod local;
pub mod runtime_api;
