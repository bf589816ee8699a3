//! "Now", read in one place: the commands read the clock once at their start
//! and hand the time to pure code, which tests then call with a fixed time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Epoch seconds now.
pub fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
