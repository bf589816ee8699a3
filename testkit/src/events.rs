//! The two EventBridge events the consumer maps, as AWS's documentation samples
//! (message/tests/fixtures) with the fields a test or bench sets: every Rust
//! test and bench outside the message crate builds its events here.

use serde_json::Value;
use sfn_mackerel_message::timestamp::format_epoch;

/// AWS's Glue Job State Change sample.
pub const GLUE_SAMPLE: &str =
    include_str!("../../message/tests/fixtures/glue-job-state-change.json");
/// AWS's Step Functions Execution Status Change sample.
pub const WORKFLOW_SAMPLE: &str =
    include_str!("../../message/tests/fixtures/sfn-execution-status-change.json");

fn sample(text: &str) -> Value {
    serde_json::from_str(text).expect("the fixture is JSON")
}

/// The Glue Job State Change of `job` reaching `state` at `time` (epoch
/// seconds), event id `id`, as a rule delivers it (the whole event).
pub fn glue_job_state_change(id: &str, job: &str, state: &str, time: i64) -> String {
    let mut event = sample(GLUE_SAMPLE);
    event["id"] = id.into();
    event["time"] = format_epoch(time).into();
    event["detail"]["jobName"] = job.into();
    event["detail"]["state"] = state.into();
    event.to_string()
}

/// The Execution Status Change of an execution of state machine `machine`
/// reaching `status`, started at `start_ms` and stopped at `stop_ms` (epoch
/// milliseconds; `None` while RUNNING), event id `id`, stamped when the status
/// changed.
pub fn execution_status_change(
    id: &str,
    machine: &str,
    status: &str,
    start_ms: i64,
    stop_ms: Option<i64>,
) -> String {
    let mut event = sample(WORKFLOW_SAMPLE);
    event["id"] = id.into();
    event["time"] = format_epoch(stop_ms.unwrap_or(start_ms).div_euclid(1000)).into();
    event["detail"]["stateMachineArn"] =
        format!("arn:aws:states:us-east-1:123456789012:stateMachine:{machine}").into();
    event["detail"]["status"] = status.into();
    event["detail"]["startDate"] = start_ms.into();
    event["detail"]["stopDate"] = stop_ms.map_or(Value::Null, Value::from);
    event.to_string()
}
