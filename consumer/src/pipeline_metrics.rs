//! The pipeline's own figures per batch, as service metrics, so a Mackerel
//! monitor can alert when results stop flowing or start piling up.

use crate::handler::BatchSummary;

/// The tsdb body with `<prefix>.values_posted`, `.messages_parked`,
/// `.messages_failed` and `.oldest_value_age_seconds` at `now`.
pub fn pipeline_figures_body(prefix: &str, summary: &BatchSummary, now: i64) -> Vec<u8> {
    let figures = [
        ("values_posted", summary.values_posted as f64),
        ("messages_parked", summary.parked_messages as f64),
        ("messages_failed", summary.failed_messages as f64),
        (
            "oldest_value_age_seconds",
            summary.oldest_value_age_seconds.unwrap_or(0) as f64,
        ),
    ];
    let points: Vec<serde_json::Value> = figures
        .iter()
        .map(|(name, value)| serde_json::json!({"name": format!("{prefix}.{name}"), "time": now, "value": value}))
        .collect();
    serde_json::to_vec(&points).expect("plain JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_figures_under_the_prefix() {
        let summary = BatchSummary {
            values_posted: 12,
            parked_messages: 1,
            failed_messages: 2,
            oldest_value_age_seconds: Some(40),
            ..BatchSummary::default()
        };
        let body: serde_json::Value =
            serde_json::from_slice(&pipeline_figures_body("sfn_mackerel", &summary, 100)).unwrap();
        assert_eq!(
            body,
            serde_json::json!([
                {"name": "sfn_mackerel.values_posted", "time": 100, "value": 12.0},
                {"name": "sfn_mackerel.messages_parked", "time": 100, "value": 1.0},
                {"name": "sfn_mackerel.messages_failed", "time": 100, "value": 2.0},
                {"name": "sfn_mackerel.oldest_value_age_seconds", "time": 100, "value": 40.0},
            ])
        );
    }
}
