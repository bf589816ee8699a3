"""The example workflow, rendered as Terraform renders it, executed in moto's Step Functions.

Specification: one run of the workflow over one item, where `make_alarm`'s Glue run
fails and the other jobs' runs succeed, ends SUCCEEDED and leaves exactly one
message per job in the queue:
- the failed job: `<prefix>.make_alarm.failed = 1` with the error's name;
- the others: `<prefix>.<job>.failed = 0` and `<prefix>.<job>.seconds` = the run's
  ExecutionTime;
- every message timestamped with the notifying state's `$$.State.EnteredTime`.

The server is scripts/moto_server.py (moto with the project's patches): the one at
MOTO_URL when set (it must be that launcher), otherwise one this test starts on a
free loopback port and stops by its process id (the fixtures in conftest.py, shared
with test_events_in_moto.py, which runs the workflow's events-only variant).

Then the consumer (`sfn-mackerel-consumer poll`) drains the queue into the Mackerel
stand-in, where the monitoring module's job monitors were created: make_alarm's
monitor has an open CRITICAL alert, the other jobs' monitors none, the stand-in
stores each job's `failed` (and the succeeded jobs' `seconds`) at the message's
minute, and nothing is set aside in the DLQ. A previous, successful run (`failed =
0` an hour earlier) is posted first, as on any day but the first, so that the run
under test arrives behind points the series already holds. Both binaries come from `cargo build --workspace --bins`
($SFN_MACKEREL_BIN_DIR, else target/debug under $CARGO_TARGET_DIR or the repository).

The queue, its DLQ, the Glue jobs, the state machine and the job monitors come from
scripts/local_world.py, the one local world of the scripts and these tests: the
queue has the Terraform module's settings (read from its HCL) and the monitors are
the monitoring module's, as Terraform would create them.

The received bodies are written as JSON lines to $SFN_MACKEREL_WORKFLOW_MESSAGES when
set (and printed). Reading them leaves the messages in the queue for the consumer:
each is received once and handed back, never deleted.

    .venv/bin/python -m pytest terraform/tests
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness import (
    SERVICE,
    STANDIN_API_KEY,
    alerts_of,
    assert_one_open_critical_alert,
    consumer_log,
    local_world,
    minute_of,
    parse_rfc3339,
    run_consumer,
    standin_request,
    stored_points,
)
from render_asl import DEFAULT_JOBS

METRIC_PREFIX = "test.glue.job"
FAILING_JOB = "make_alarm"
# The item a run processes: today's partition, from the clock.
WORKFLOW_INPUT = {"items": [{"target_date": datetime.now(timezone.utc).date().isoformat()}]}


@pytest.fixture(scope="module")
def workflow_run(executing_state_machines):
    """Runs the workflow once; returns the execution, the message bodies, the Glue runs and the queues."""
    url = executing_state_machines
    run_id = uuid.uuid4().hex[:8]
    queue_url, dlq_url = local_world.create_queues(
        local_world.client("sqs", url), f"sfn-mackerel-workflow-{run_id}"
    )
    run = local_world.run_example_workflow(
        url,
        queue_url,
        service=SERVICE,
        metric_prefix=METRIC_PREFIX,
        jobs=DEFAULT_JOBS,
        failing_jobs=(FAILING_JOB,),
        items=WORKFLOW_INPUT["items"],
        run_id=run_id,
    )
    bodies = [json.loads(message["Body"]) for message in run["messages"]]

    lines = "".join(json.dumps(body, separators=(",", ":")) + "\n" for body in bodies)
    print(lines, end="")
    if os.environ.get("SFN_MACKEREL_WORKFLOW_MESSAGES"):
        Path(os.environ["SFN_MACKEREL_WORKFLOW_MESSAGES"]).write_text(lines, encoding="utf-8")

    return {
        "execution": run["execution"],
        "bodies": bodies,
        "job_runs": run["job_runs"],
        "queue_url": queue_url,
        "dlq_url": dlq_url,
    }


def _body_for(bodies: list[dict], job: str) -> dict:
    failed_name = f"{METRIC_PREFIX}.{job}.failed"
    matching = [
        body
        for body in bodies
        if body.get("name") == failed_name
        or any(metric["name"] == failed_name for metric in body.get("metrics", []))
    ]
    assert len(matching) == 1, f"expected one message for {job}, got {matching} among {bodies}"
    return matching[0]


def test_a_failing_job_does_not_fail_the_workflow(workflow_run):
    execution = workflow_run["execution"]
    assert execution["status"] == "SUCCEEDED", execution
    assert workflow_run["job_runs"][FAILING_JOB]["JobRunState"] == "FAILED"


def test_each_job_sends_exactly_one_message(workflow_run):
    assert len(workflow_run["bodies"]) == len(DEFAULT_JOBS), workflow_run["bodies"]
    for job in DEFAULT_JOBS:
        assert _body_for(workflow_run["bodies"], job)["service"] == SERVICE


def test_the_failed_job_reports_failed_1_with_the_error_name(workflow_run):
    body = _body_for(workflow_run["bodies"], FAILING_JOB)
    assert body["name"] == f"{METRIC_PREFIX}.{FAILING_JOB}.failed"
    assert body["value"] == 1
    assert body["error"] == {"Error": "States.TaskFailed"}
    assert "metrics" not in body


def test_succeeded_jobs_report_failed_0_and_their_execution_time(workflow_run):
    for job in DEFAULT_JOBS:
        if job == FAILING_JOB:
            continue
        body = _body_for(workflow_run["bodies"], job)
        values = {metric["name"]: metric["value"] for metric in body["metrics"]}
        assert values == {
            f"{METRIC_PREFIX}.{job}.failed": 0,
            f"{METRIC_PREFIX}.{job}.seconds": workflow_run["job_runs"][job]["ExecutionTime"],
            # A run that ran was not skipped: this closes a skipped warning.
            f"{METRIC_PREFIX}.{job}.skipped": 0,
        }


def test_every_message_is_timestamped_within_the_execution(workflow_run):
    execution = workflow_run["execution"]
    for body in workflow_run["bodies"]:
        sent_at = parse_rfc3339(body["time"])
        assert sent_at.tzinfo is not None, body
        assert execution["startDate"] <= sent_at <= execution["stopDate"], (body, execution)


def test_each_glue_run_receives_the_item(workflow_run):
    for job, run in workflow_run["job_runs"].items():
        assert json.loads(run["Arguments"]["--item"]) == WORKFLOW_INPUT["items"][0], job


# --- The Mackerel leg: the consumer drains the queue into the Mackerel stand-in. ---

# The previous run of the workflow, posted before this one's results, as on any
# day but the first.
PREVIOUS_RUN_SECONDS_EARLIER = 3600


def _minute_of(body: dict) -> int:
    return minute_of(parse_rfc3339(body["time"]).timestamp())


@pytest.fixture(scope="module")
def drained_into_mackerel(workflow_run, moto_url, mackerel_standin):
    """Creates the module's job monitors in the stand-in, posts the previous run (every job
    succeeded, an hour earlier), then runs the consumer over the workflow's queue until it idles."""
    monitors = local_world.create_job_monitors(
        mackerel_standin, STANDIN_API_KEY, SERVICE, METRIC_PREFIX, DEFAULT_JOBS
    )
    previous_run = min(_minute_of(body) for body in workflow_run["bodies"]) - PREVIOUS_RUN_SECONDS_EARLIER
    standin_request(
        mackerel_standin,
        f"/api/v0/services/{SERVICE}/tsdb",
        [{"name": f"{METRIC_PREFIX}.{job}.failed", "time": previous_run, "value": 0} for job in DEFAULT_JOBS],
    )

    finished = run_consumer(moto_url, mackerel_standin, workflow_run["queue_url"], workflow_run["dlq_url"])
    sqs = local_world.client("sqs", moto_url)
    return {
        "consumer": finished,
        "monitor_ids": {job: monitor["id"] for job, monitor in monitors.items()},
        "alerts": standin_request(mackerel_standin, "/api/v0/alerts?withClosed=true")["alerts"],
        "dump": standin_request(mackerel_standin, "/_standin/dump"),
        "queue_depth": local_world.queue_depth(sqs, workflow_run["queue_url"]),
        "dlq_depth": local_world.queue_depth(sqs, workflow_run["dlq_url"]),
    }


def test_the_consumer_drains_the_queue_and_sets_nothing_aside(drained_into_mackerel):
    finished = drained_into_mackerel["consumer"]
    assert finished.returncode == 0, consumer_log(finished)
    assert drained_into_mackerel["queue_depth"] == 0
    assert drained_into_mackerel["dlq_depth"] == 0, consumer_log(finished)


def test_the_failed_jobs_monitor_has_an_open_critical_alert(drained_into_mackerel):
    assert_one_open_critical_alert(drained_into_mackerel["alerts"], drained_into_mackerel["monitor_ids"][FAILING_JOB])


def test_the_succeeded_jobs_monitors_raise_no_alert(drained_into_mackerel):
    for job, monitor_id in drained_into_mackerel["monitor_ids"].items():
        if job != FAILING_JOB:
            assert alerts_of(drained_into_mackerel["alerts"], monitor_id) == [], job


def test_mackerel_stores_each_jobs_failed_flag_at_its_minute(workflow_run, drained_into_mackerel):
    for job in DEFAULT_JOBS:
        minute = _minute_of(_body_for(workflow_run["bodies"], job))
        points = stored_points(drained_into_mackerel["dump"], f"{METRIC_PREFIX}.{job}.failed")
        assert points.get(minute) == (1 if job == FAILING_JOB else 0), (job, points)


def test_mackerel_stores_the_execution_time_of_succeeded_jobs_only(workflow_run, drained_into_mackerel):
    for job in DEFAULT_JOBS:
        points = stored_points(drained_into_mackerel["dump"], f"{METRIC_PREFIX}.{job}.seconds")
        if job == FAILING_JOB:
            assert points == {}, points
        else:
            minute = _minute_of(_body_for(workflow_run["bodies"], job))
            assert points == {minute: workflow_run["job_runs"][job]["ExecutionTime"]}, (job, points)


# --- Overlapping executions: a job whose previous run is still going. ---


@pytest.fixture(scope="module")
def overlapping_run(executing_state_machines):
    """Runs the workflow while the job's previous run is still going (moto raises
    Glue.ConcurrentRunsExceededException, as Glue does at MaxConcurrentRuns), with the
    retry shortened to one try after 1 s."""
    url = executing_state_machines
    run_id = uuid.uuid4().hex[:8]
    job = f"overlapping_{run_id}"
    queue_url, _ = local_world.create_queues(local_world.client("sqs", url), f"sfn-mackerel-overlap-{run_id}")
    run = local_world.run_example_workflow(
        url,
        queue_url,
        service=SERVICE,
        metric_prefix=METRIC_PREFIX,
        jobs=(job,),
        items=WORKFLOW_INPUT["items"],
        run_id=run_id,
        overlap_retry=(1, 1),
        running_jobs=(job,),
    )
    history = local_world.client("stepfunctions", url).get_execution_history(
        executionArn=run["execution"]["executionArn"], maxResults=1000
    )["events"]
    return {
        "job": job,
        "execution": run["execution"],
        "bodies": [json.loads(m["Body"]) for m in run["messages"]],
        "history": history,
    }


def test_an_overlapping_run_is_reported_skipped_and_never_failed(overlapping_run):
    job = overlapping_run["job"]
    assert overlapping_run["execution"]["status"] == "SUCCEEDED", overlapping_run["execution"]
    (body,) = overlapping_run["bodies"]
    assert body["name"] == f"{METRIC_PREFIX}.{job}.skipped"
    assert body["value"] == 1
    assert body["error"] == {"Error": "Glue.ConcurrentRunsExceededException"}
    assert not any(f"{job}.failed" in json.dumps(b) for b in overlapping_run["bodies"])


def test_an_overlapping_run_is_tried_again_before_it_is_reported(overlapping_run):
    failures = [
        event["taskFailedEventDetails"]["error"]
        for event in overlapping_run["history"]
        if event["type"] == "TaskFailed"
    ]
    # The first try and the one retry (overlap_retry=(1, 1)) both met the running run.
    assert failures == ["Glue.ConcurrentRunsExceededException"] * 2, overlapping_run["history"]
