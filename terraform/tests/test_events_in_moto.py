"""Results from AWS's own EventBridge events, end to end in moto: the example's
events-only workflow (results_via = "events"), the events AWS would emit for its
run put through the pipeline module's rules, and the consumer draining them into
the Mackerel stand-in.

Specification, for one run over one item in which `make_alarm`'s Glue run fails:
1. the events-only definition holds no sqs:sendMessage;
2. the execution ends FAILED in its Fail state, every job still ran (make_alarm
   FAILED, the others SUCCEEDED: no job's failure stopped the others), and the
   workflow put nothing in the queue;
3. with rules created from the patterns rendered from the module's templates, with
   the example's filters (glue_job_names = the example's jobs, state_machine_arns =
   [this state machine]), the events of the run reach the queue as EventBridge
   delivers them (the whole event is the body); the execution's RUNNING event does
   not, nor an event of a job outside the list or of another state machine;
4. EventBridge delivers at least once: one delivered event is delivered again,
   unchanged (same id), and the consumer, configured as the module configures it
   when event_service is set, drains the queue into the stand-in, where the
   monitoring module's job monitors were created;
5. then each job's `<metric_prefix>.<job>.failed` holds one point, at its event's
   minute (1 for make_alarm, 0 for the others), despite the duplicate;
   make_alarm's monitor has one open CRITICAL alert and the others none; the state
   machine's `<workflow_metric_prefix>.<name>.failed` = 1 and `.seconds` = its
   duration, at its stop minute, and the monitoring module's workflow monitor
   on it has an open CRITICAL alert; the queue and the DLQ are empty.

moto stands in for Glue and Step Functions as the events' sources: real EventBridge
refuses put_events with an `aws.` source, moto accepts it and applies the rules'
patterns as EventBridge does (scripts/local_world.py: put_events). The servers are
conftest.py's, as for test_glue_workflow_in_moto.py; the consumer's own decoding of
events is proven in consumer/tests/events_e2e.rs.

    .venv/bin/python -m pytest terraform/tests/test_events_in_moto.py
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from harness import (
    SERVICE,
    alerts_of,
    assert_one_open_critical_alert,
    STANDIN_API_KEY,
    consumer_log,
    local_world,
    minute_of,
    parse_rfc3339,
    run_consumer,
    standin_request,
    stored_points,
)
from render_asl import DEFAULT_JOBS, VIA_EVENTS, render_workflow

FAILING_JOB = "make_alarm"
EXAMPLE = local_world.example_defaults()
# The example passes these to the module, which gives them to the consumer.
METRIC_PREFIX = EXAMPLE["metric_prefix"]
WORKFLOW_PREFIX = EXAMPLE["workflow_metric_prefix"]
# What lambda.tf sets when event_service is given (test_terraform_wiring.py holds
# the names to the consumer's).
CONSUMER_SETTINGS = {
    "EVENT_SERVICE": SERVICE,
    "EVENT_GLUE_PREFIX": METRIC_PREFIX,
    "EVENT_WORKFLOW_PREFIX": WORKFLOW_PREFIX,
    "EVENT_STOPPED_AS": local_world.variable_defaults(local_world.PIPELINE_MODULE)["glue_stopped_as"],
}
# A job the rule leaves out, and the suffix of a state machine it leaves out.
JOB_OUTSIDE_THE_LIST = "not_an_example_job"
OTHER_STATE_MACHINE_SUFFIX = "-other"
# The item a run processes: today's partition, from the clock.
ITEMS = [{"target_date": datetime.now(timezone.utc).date().isoformat()}]

GLUE_DETAIL_TYPE = "Glue Job State Change"
WORKFLOW_DETAIL_TYPE = "Step Functions Execution Status Change"


def _resources(node) -> list[str]:
    """Every state's Resource in an ASL document, nested branches and item processors included."""
    if isinstance(node, dict):
        own = [node["Resource"]] if isinstance(node.get("Resource"), str) else []
        return own + [resource for value in node.values() for resource in _resources(value)]
    if isinstance(node, list):
        return [resource for value in node for resource in _resources(value)]
    return []


# --- 1. The events-only definition ----------------------------------------------------


def test_the_events_only_definition_sends_nothing_to_sqs():
    definition = render_workflow(via=VIA_EVENTS, jobs=DEFAULT_JOBS)
    resources = _resources(json.loads(definition))
    assert resources, "the definition runs no task at all"
    assert not [resource for resource in resources if ":sqs:" in resource], resources
    assert "sqs:sendmessage" not in definition.lower()


# --- The rules' patterns, rendered from the module's templates as Terraform does ---


def test_the_glue_pattern_filters_on_job_names_and_prefixes_never_on_the_state():
    pattern = json.loads(local_world.render_event_patterns(
        glue_job_names=["make_order", 'odd "name"'], glue_job_name_prefixes=["team-a-"]
    )["glue_jobs"])
    assert pattern == {
        "source": ["aws.glue"],
        "detail-type": [GLUE_DETAIL_TYPE],
        "detail": {"jobName": ["make_order", 'odd "name"', {"prefix": "team-a-"}]},
    }


def test_without_a_filter_the_patterns_take_every_job_and_state_machine():
    patterns = {key: json.loads(text) for key, text in local_world.render_event_patterns().items()}
    assert patterns["glue_jobs"]["detail"] == {"jobName": [{"exists": True}]}
    assert patterns["workflows"]["detail"]["stateMachineArn"] == [{"exists": True}]


def test_the_workflow_pattern_leaves_out_running_only():
    arn = f"arn:aws:states:{local_world.REGION}:{local_world.ACCOUNT_ID}:stateMachine:nightly"
    pattern = json.loads(local_world.render_event_patterns(state_machine_arns=[arn])["workflows"])
    assert pattern == {
        "source": ["aws.states"],
        "detail-type": [WORKFLOW_DETAIL_TYPE],
        "detail": {"stateMachineArn": [arn], "status": [{"anything-but": ["RUNNING"]}]},
    }


def test_the_workflow_targets_input_keeps_what_the_consumer_reads_and_drops_the_executions_data():
    # EventBridge fills each <name> with the value at its path: a string as it is (the
    # template quotes it), a number as a number. AWS's sample, filled in like that:
    transformer = local_world.workflow_event_input_transformer()
    sample = json.loads((local_world.EVENT_FIXTURES / "sfn-execution-status-change.json").read_text())
    filled = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        value = sample
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        filled = filled.replace(f"<{name}>", str(value))
    assert json.loads(filled) == {
        "version": sample["version"], "id": sample["id"], "detail-type": sample["detail-type"],
        "source": sample["source"], "time": sample["time"],
        "detail": {key: value for key, value in sample["detail"].items() if key not in ("input", "output")},
    }


# --- 2. The events-only workflow in moto's Step Functions ---------------------------


@pytest.fixture(scope="module")
def events_only_run(executing_state_machines):
    """Runs the events-only workflow once, make_alarm's Glue run failing, next to a
    results queue and DLQ shaped like the module's."""
    url = executing_state_machines
    run_id = uuid.uuid4().hex[:8]
    sqs = local_world.client("sqs", url)
    queue_url, dlq_url = local_world.create_queues(sqs, f"sfn-mackerel-events-{run_id}")
    run = local_world.run_example_workflow(
        url,
        queue_url,
        jobs=DEFAULT_JOBS,
        failing_jobs=(FAILING_JOB,),
        items=ITEMS,
        run_id=run_id,
        expected_messages=0,
        via=VIA_EVENTS,
    )
    return {
        **run,
        "run_id": run_id,
        "queue_url": queue_url,
        "dlq_url": dlq_url,
        "queued_by_the_workflow": local_world.queue_depth(sqs, queue_url),
    }


def test_a_failed_job_fails_the_execution_in_its_fail_state(events_only_run):
    execution = events_only_run["execution"]
    assert execution["status"] == "FAILED", execution
    assert execution.get("error") == "GlueJobFailed", execution


def test_every_job_still_runs_when_one_fails(events_only_run):
    states = {job: [run["JobRunState"] for run in runs] for job, runs in events_only_run["runs"].items()}
    assert states == {job: ["FAILED" if job == FAILING_JOB else "SUCCEEDED"] for job in DEFAULT_JOBS}


def test_the_events_only_workflow_puts_nothing_in_the_queue(events_only_run):
    assert events_only_run["queued_by_the_workflow"] == 0


# --- 3. Its events through the module's rules ---------------------------------------


def _outsiders(run: dict) -> list[dict]:
    """Events the rules must leave out: a run of a job outside glue_job_names, and the
    end of an execution of another state machine."""
    job_run = dict(run["runs"][FAILING_JOB][0], JobName=JOB_OUTSIDE_THE_LIST)
    execution = run["execution"]
    other_machine = execution["stateMachineArn"] + OTHER_STATE_MACHINE_SUFFIX
    other_execution = dict(
        execution,
        stateMachineArn=other_machine,
        executionArn=execution["executionArn"].replace(":execution:", ":execution:other-", 1),
    )
    return [local_world.glue_job_state_change(job_run), local_world.execution_status_change(other_execution)]


@pytest.fixture(scope="module")
def delivered(events_only_run, moto_url):
    """Creates the module's two rules with the example's filters, puts the events AWS would
    emit for the run (and two outsiders), and peeks at what reached the queue."""
    run = events_only_run
    sqs = local_world.client("sqs", moto_url)
    patterns = local_world.render_event_patterns(
        glue_job_names=DEFAULT_JOBS,
        state_machine_arns=[run["execution"]["stateMachineArn"]],
    )
    emitted = local_world.workflow_run_events(run)
    with local_world.event_rules(moto_url, f"sfn-mackerel-{run['run_id']}", patterns, run["queue_url"], run["dlq_url"]):
        local_world.put_events(moto_url, emitted + _outsiders(run))
    # moto delivers while put_events runs: what is queued now is all that arrived.
    queued = local_world.queue_depth(sqs, run["queue_url"])
    messages = local_world.peek_messages(sqs, run["queue_url"], queued)
    return {
        "emitted": [json.loads(entry["Detail"]) for entry in emitted],
        "queued": queued,
        "raw_bodies": [message["Body"] for message in messages],
        "bodies": [json.loads(message["Body"]) for message in messages],
    }


def _glue_events(bodies: list[dict]) -> dict[str, dict]:
    events = [body for body in bodies if body["detail-type"] == GLUE_DETAIL_TYPE]
    by_job = {body["detail"]["jobName"]: body for body in events}
    assert len(by_job) == len(events), f"a job's event arrived twice: {events}"
    return by_job


def _execution_events(bodies: list[dict]) -> list[dict]:
    return [body for body in bodies if body["detail-type"] == WORKFLOW_DETAIL_TYPE]


def _execution_end(bodies: list[dict]) -> dict:
    """The one delivered event of the execution's end (any RUNNING one is another test's)."""
    (event,) = [body for body in _execution_events(bodies) if body["detail"]["status"] != "RUNNING"]
    return event


def test_each_glue_runs_end_reaches_the_queue_as_its_event(delivered, events_only_run):
    events = _glue_events(delivered["bodies"])
    assert {job: event["detail"]["state"] for job, event in events.items() if job in DEFAULT_JOBS} == {
        job: "FAILED" if job == FAILING_JOB else "SUCCEEDED" for job in DEFAULT_JOBS
    }
    for job in DEFAULT_JOBS:
        event, (job_run,) = events[job], events_only_run["runs"][job]
        assert event["source"] == "aws.glue" and event["id"], event
        assert event["detail"]["jobRunId"] == job_run["Id"], event
        assert parse_rfc3339(event["time"]).timestamp() == int(local_world.epoch_seconds(job_run["CompletedOn"]))


def test_the_executions_end_reaches_the_queue_as_its_event(delivered, events_only_run):
    event = _execution_end(delivered["bodies"])
    execution = events_only_run["execution"]
    assert event["source"] == "aws.states", event
    assert event["detail"]["stateMachineArn"] == execution["stateMachineArn"]
    assert event["detail"]["status"] == "FAILED"
    assert event["detail"]["stopDate"] >= event["detail"]["startDate"]


def test_the_executions_input_and_output_never_reach_the_queue(delivered, events_only_run):
    # The rule's input transformer rebuilds the event without them (events.tf).
    (emitted,) = [detail for detail in delivered["emitted"] if detail.get("status") == "FAILED"]
    assert "input" in emitted, "the test emitted the execution's input"
    event = _execution_end(delivered["bodies"])
    assert set(event["detail"]) == {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate"}
    assert event["detail"]["executionArn"] == events_only_run["execution"]["executionArn"]
    assert event["id"] and event["time"] and event["version"] == "0", event


def test_the_running_execution_event_is_left_out(delivered):
    assert "RUNNING" in [event.get("status") for event in delivered["emitted"]], "the test emitted no RUNNING event"
    assert "RUNNING" not in [body["detail"]["status"] for body in _execution_events(delivered["bodies"])]


def test_events_of_other_jobs_and_state_machines_are_left_out(delivered, events_only_run):
    assert JOB_OUTSIDE_THE_LIST not in _glue_events(delivered["bodies"])
    machines = {body["detail"]["stateMachineArn"] for body in _execution_events(delivered["bodies"])}
    assert machines == {events_only_run["execution"]["stateMachineArn"]}
    # Nothing else either: one event per job, and the execution's end.
    assert delivered["queued"] == len(DEFAULT_JOBS) + 1, delivered["bodies"]


# --- 4. A duplicate, then the consumer drains everything into Mackerel ---------------


@pytest.fixture(scope="module")
def drained(events_only_run, delivered, moto_url, mackerel_standin):
    """Delivers make_alarm's event a second time, unchanged, creates the monitoring
    module's job monitors in the stand-in, and runs the consumer until the queue idles."""
    run = events_only_run
    sqs = local_world.client("sqs", moto_url)
    (duplicate,) = [
        raw for raw, body in zip(delivered["raw_bodies"], delivered["bodies"])
        if body["detail"].get("jobName") == FAILING_JOB
    ]
    sqs.send_message(QueueUrl=run["queue_url"], MessageBody=duplicate)
    queued = local_world.queue_depth(sqs, run["queue_url"])

    monitors = local_world.create_job_monitors(mackerel_standin, STANDIN_API_KEY, SERVICE, METRIC_PREFIX, DEFAULT_JOBS)
    machine = run["execution"]["stateMachineArn"].rsplit(":", 1)[-1]
    (workflow_monitor,) = local_world.create_monitors(
        mackerel_standin, STANDIN_API_KEY, local_world.workflow_monitor_bodies(SERVICE, WORKFLOW_PREFIX, [machine])
    ).values()
    finished = run_consumer(moto_url, mackerel_standin, run["queue_url"], run["dlq_url"], CONSUMER_SETTINGS)
    return {
        "queued_with_the_duplicate": queued,
        "consumer": finished,
        "monitor_ids": {job: monitor["id"] for job, monitor in monitors.items()},
        "workflow_monitor_id": workflow_monitor["id"],
        "alerts": standin_request(mackerel_standin, "/api/v0/alerts?withClosed=true")["alerts"],
        "dump": standin_request(mackerel_standin, "/_standin/dump"),
        "queue_depth": local_world.queue_depth(sqs, run["queue_url"]),
        "dlq_depth": local_world.queue_depth(sqs, run["dlq_url"]),
    }


def test_the_consumer_drains_the_queue_with_the_duplicate_and_sets_nothing_aside(delivered, drained):
    assert drained["queued_with_the_duplicate"] == delivered["queued"] + 1
    assert drained["consumer"].returncode == 0, consumer_log(drained["consumer"])
    assert drained["queue_depth"] == 0
    assert drained["dlq_depth"] == 0, consumer_log(drained["consumer"])


# --- 5. What Mackerel holds ------------------------------------------------------------


def test_each_jobs_status_is_one_point_at_its_events_minute_despite_the_duplicate(delivered, drained):
    events = _glue_events(delivered["bodies"])
    for job in DEFAULT_JOBS:
        event = events[job]
        points = stored_points(drained["dump"], f"{METRIC_PREFIX}.{job}.failed")
        minute = minute_of(parse_rfc3339(event["time"]).timestamp())
        assert points == {minute: 1 if job == FAILING_JOB else 0}, (job, points)


def test_the_failed_jobs_monitor_has_one_open_critical_alert(drained):
    assert_one_open_critical_alert(drained["alerts"], drained["monitor_ids"][FAILING_JOB])


def test_the_workflows_monitor_has_one_open_critical_alert(drained):
    assert_one_open_critical_alert(drained["alerts"], drained["workflow_monitor_id"])


def test_the_succeeded_jobs_monitors_raise_no_alert(drained):
    for job, monitor_id in drained["monitor_ids"].items():
        if job != FAILING_JOB:
            assert alerts_of(drained["alerts"], monitor_id) == [], job


def test_the_workflows_series_say_the_run_failed_and_how_long_it_took(delivered, drained, events_only_run):
    event = _execution_end(delivered["bodies"])
    start_ms, stop_ms = event["detail"]["startDate"], event["detail"]["stopDate"]
    name = events_only_run["execution"]["stateMachineArn"].split(":stateMachine:")[1]
    minute = minute_of(stop_ms / 1000)
    assert stored_points(drained["dump"], f"{WORKFLOW_PREFIX}.{name}.failed") == {minute: 1}
    assert stored_points(drained["dump"], f"{WORKFLOW_PREFIX}.{name}.seconds") == {minute: (stop_ms - start_ms) / 1000}
