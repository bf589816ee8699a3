//! Keeping to a target rate across concurrent senders: each call takes the next
//! free slot on a shared timeline, so bursts never exceed the rate and idle
//! time is not saved up.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out send slots `per_message x count` apart; no limit when the rate is `None`.
#[derive(Debug)]
pub struct Pacer {
    per_message: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `rate` in messages per second; `None` or a non-positive rate means unlimited.
    pub fn new(rate: Option<f64>) -> Self {
        let per_message = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        Self {
            per_message,
            next: Mutex::new(None),
        }
    }

    /// Waits for the slot of a send of `count` messages.
    pub async fn wait(&self, count: usize) {
        let Some(per_message) = self.per_message else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + per_message * count as u32);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Latency percentiles of a set of measured calls, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; all zero for no samples.
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1000.0
        };
        Self {
            p50_ms: at(50.0),
            p90_ms: at(90.0),
            p99_ms: at(99.0),
            max_ms: at(100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_rate_across_callers() {
        let pacer = std::sync::Arc::new(Pacer::new(Some(100.0)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                pacer.wait(10).await;
                Instant::now()
            }));
        }
        let mut offsets: Vec<u128> = Vec::new();
        for task in tasks {
            offsets.push((task.await.unwrap() - start).as_millis());
        }
        offsets.sort_unstable();
        assert_eq!(offsets, vec![0, 100, 200, 300, 400]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_for_a_burst() {
        let pacer = Pacer::new(Some(10.0));
        pacer.wait(1).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = Instant::now();
        pacer.wait(1).await;
        pacer.wait(1).await;
        assert_eq!((Instant::now() - before).as_millis(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_means_no_waiting() {
        let pacer = Pacer::new(None);
        let before = Instant::now();
        for _ in 0..100 {
            pacer.wait(10).await;
        }
        assert_eq!(Instant::now(), before);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(
            (p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
