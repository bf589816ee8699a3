//! The figures of one batch: what it received, what became of it and what it
//! cost. Logged once per batch, and the source of the pipeline's own metrics.

use std::collections::BTreeMap;

use crate::outcome::Fate;

/// The figures logged once per batch (and optionally posted to Mackerel).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSummary {
    pub received: usize,
    pub valid: usize,
    pub set_aside_by_reason: BTreeMap<&'static str, usize>,
    pub values: usize,
    pub values_posted: usize,
    pub requests: u32,
    pub retries: u32,
    pub posted_messages: usize,
    pub parked_messages: usize,
    pub failed_messages: usize,
    /// How old the oldest valid value was when the batch arrived.
    pub oldest_value_age_seconds: Option<i64>,
    /// Job status series read before writing (the alerting guarantee).
    pub status_reads: u32,
    /// Reads among them that failed (the batch alone decided those alerts).
    pub failed_status_reads: u32,
    /// Points written to alert series (`<job>.alert`), not counted in `values_posted`.
    pub alert_values_posted: usize,
    /// Copies of an EventBridge event already in the batch (the same body,
    /// delivered twice): done with their first copy, their values not posted again.
    pub duplicate_events: usize,
}

impl BatchSummary {
    /// Counts where each message ended.
    pub fn count_fates(&mut self, fates: &[Fate]) {
        for fate in fates {
            match fate {
                Fate::Posted => self.posted_messages += 1,
                Fate::Parked(reason) => {
                    self.parked_messages += 1;
                    *self.set_aside_by_reason.entry(reason.code()).or_default() += 1;
                }
                Fate::Failed => self.failed_messages += 1,
            }
        }
    }

    /// The one `batch done` line.
    pub fn log(&self) {
        let set_aside: Vec<String> = self
            .set_aside_by_reason
            .iter()
            .map(|(reason, count)| format!("{reason}={count}"))
            .collect();
        tracing::info!(
            received = self.received,
            valid = self.valid,
            set_aside = self.parked_messages,
            set_aside_by_reason = %set_aside.join(","),
            values = self.values,
            values_posted = self.values_posted,
            requests = self.requests,
            retries = self.retries,
            status_reads = self.status_reads,
            failed_status_reads = self.failed_status_reads,
            alert_values_posted = self.alert_values_posted,
            duplicate_events = self.duplicate_events,
            failed = self.failed_messages,
            oldest_value_age_seconds = self.oldest_value_age_seconds.unwrap_or(0),
            "batch done"
        );
    }
}
