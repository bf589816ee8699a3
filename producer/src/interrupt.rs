//! Ctrl-C as a request to stop cleanly: long commands finish the batch in hand
//! (so no message is half-moved), write what they did, and exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set once the operator asked to stop; cheap to clone and poll.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn trigger(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Sets the flag on the first Ctrl-C; a second Ctrl-C ends the process at once.
    pub fn listen_for_ctrl_c(&self) {
        let flag = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nstopping after the batch in hand (Ctrl-C again to abort at once)");
                flag.trigger();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
}
