//! The SQS calls that the consumer and the operator CLI share, written once:
//! batch calls of at most ten entries within SQS's payload limit, each entry's
//! result mapped back to the message it belongs to (a call that fails fails each
//! of its entries, with the reason), and deadlines that no call outlives; and
//! the one readable line an SDK error becomes for an operator.

pub mod batch;
pub mod error_text;
pub mod queue;
