//! Which series are a job's status, and the name of the alert series the consumer
//! writes beside each: one definition shared by the consumer that writes them, the
//! CLI that checks them and the monitors that watch them (through the README).
//!
//! A workflow reports a job's status as `<job>.failed` (1 for a failure, 0 for a
//! success), stamped with the job's time, for the graph. Mackerel evaluates a
//! monitor only on a series' newest point, so a failure that arrives after a
//! newer point (a redelivery, a redrive, a race between consumers) would never be
//! evaluated. The consumer therefore also writes `<job>.alert`, stamped when it
//! delivers, which the job's monitor watches.

use crate::MergeRule;

/// A series whose name ends with this is a job's status.
pub const STATUS_SUFFIX: &str = ".failed";

/// The alert series of `<job>.failed` is `<job>.alert`.
pub const ALERT_SUFFIX: &str = ".alert";

/// A status value above this is a failure (the monitors' threshold is `> 0`,
/// which matches for the 0 and 1 that workflows send).
pub const FAILED_ABOVE: f64 = 0.5;

/// Whether `name` is a job's status series.
pub fn is_status_series(name: &str) -> bool {
    name.len() > STATUS_SUFFIX.len() && name.ends_with(STATUS_SUFFIX)
}

/// Whether `name` is an alert series (written by the consumer, never sent).
pub fn is_alert_series(name: &str) -> bool {
    name.len() > ALERT_SUFFIX.len() && name.ends_with(ALERT_SUFFIX)
}

/// The alert series written for the status series `name`, if it is one.
/// Always a valid metric name when `name` is one: a suffix is swapped for a
/// shorter one of the same characters.
pub fn alert_series_of(name: &str) -> Option<String> {
    is_status_series(name).then(|| {
        format!(
            "{}{ALERT_SUFFIX}",
            &name[..name.len() - STATUS_SUFFIX.len()]
        )
    })
}

/// The merge rule for a series' values of one minute: a job's status by max
/// whatever is configured (a status is a flag, and a failure must win its
/// minute), every other series by `configured`.
pub fn merge_rule_for(name: &str, configured: MergeRule) -> MergeRule {
    if is_status_series(name) {
        MergeRule::Max
    } else {
        configured
    }
}

/// Whether a status value is a failure.
pub fn is_failure(value: f64) -> bool {
    value > FAILED_ABOVE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_failed_series_has_an_alert_series_beside_it() {
        assert_eq!(
            alert_series_of("prd.glue.job.make_order.failed").as_deref(),
            Some("prd.glue.job.make_order.alert")
        );
    }

    #[test]
    fn a_status_merges_by_max_whatever_is_configured() {
        assert_eq!(
            merge_rule_for("job.failed", MergeRule::Last),
            MergeRule::Max
        );
        assert_eq!(
            merge_rule_for("job.seconds", MergeRule::Last),
            MergeRule::Last
        );
    }

    #[test]
    fn other_series_have_none() {
        for name in [
            "prd.glue.job.make_order.seconds",
            ".failed",
            "failed",
            "x.failed.count",
        ] {
            assert_eq!(alert_series_of(name), None, "{name}");
        }
    }

    #[test]
    fn the_alert_name_is_valid_whenever_the_status_name_is() {
        let alert = alert_series_of("a-b_c.9.failed").unwrap();
        assert!(crate::names::check_metric_name(&alert).is_ok());
        assert!(alert.len() < "a-b_c.9.failed".len());
    }
}
