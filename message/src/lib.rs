//! The job-result message that a workflow's `sqs:sendMessage` task puts on the
//! queue (format v1), shared by the consumer that decodes it and the operator CLI
//! that produces it, and the EventBridge events read as job results. Everything
//! here is pure: no I/O, no clock.

pub mod dead_letter;
pub mod decode;
pub mod encode;
pub mod events;
pub mod merge;
pub mod names;
pub mod read_windows;
pub mod reason;
pub mod sqs_event;
pub mod status;
pub mod timestamp;

pub use decode::{
    decode, decode_record, takes_time_from_sending, DecodeContext, Decoded, MetricValue,
};
pub use encode::{OutgoingMessage, OutgoingMetric};
pub use merge::MergeRule;
pub use reason::{Rejection, SetAsideReason};
pub use timestamp::TimeWindow;
