#!/usr/bin/env python3
"""The demo's AWS and Mackerel steps, run by scripts/demo.sh with the project venv.

Why it exists: the demo must show what a user deploys, so every step goes through
scripts/local_world.py (the queue and DLQ with the Terraform module's settings, the
monitoring module's job monitors, the example workflow executed in moto's Step
Functions) and only the demo's story lives here. Everything talks to loopback:
moto at $MOTO_URL, the Mackerel stand-in at $MACKEREL_API_BASE.

  demo_steps.py warm-up    turn on moto's Step Functions execution and run a throwaway execution
  demo_steps.py setup      create the queues, the secret and the job monitors; print export lines
  demo_steps.py workflow   execute the example workflow once; make_alarm's Glue run fails
  demo_steps.py events     execute its events-only variant (results_via = "events"): make_alarm's and
                           make_order's runs fail; the events Glue and Step Functions emit reach the
                           queue through the pipeline module's EventBridge rules
  demo_steps.py malformed  send the message a typo in a hand-written MessageBody produces
  demo_steps.py report     print what reached Mackerel per job, the alerts and the queue's depth

State between steps travels in environment variables that `setup` prints and demo.sh exports.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import urllib.error
import uuid
from datetime import datetime, timezone

import local_world
from render_asl import VIA_EVENTS

FAILING_JOB = "make_alarm"
# The run reported through events only: make_order fails there, and only there.
FAILING_JOBS_OF_THE_EVENTS_RUN = (FAILING_JOB, "make_order")
EVENTS_RUN_ID = "events"
# The module's names with its default name "sfn-mackerel" (main.tf's locals).
QUEUE_NAME = "sfn-mackerel-results"
SECRET_NAME = "sfn-mackerel/mackerel-api-key"


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"demo_steps.py: {name} is not set: run the demo with ./scripts/demo.sh, which sets it")
    return value


def _mackerel(path: str, payload=None):
    return local_world.mackerel_request(_env("MACKEREL_API_BASE"), _env("DEMO_API_KEY"), path, payload)


def _service() -> str:
    """The Mackerel service the demo's stand-in knows (demo.sh sets it)."""
    return _env("SERVICE")


def _example() -> tuple[str, list[str]]:
    """The example workflow's metric prefix and jobs, from its variables.tf."""
    defaults = local_world.example_defaults()
    return defaults["metric_prefix"], defaults["glue_jobs"]


def _workflow_prefix() -> str:
    """The prefix of the workflow's own series (the example's workflow_metric_prefix)."""
    return local_world.example_defaults()["workflow_metric_prefix"]


def _say(text: str) -> None:
    print(f"    {text}", file=sys.stderr)


def warm_up() -> None:
    """moto loads its Step Functions interpreter and its Glue and SQS integrations on the
    first execution, which then takes seconds; demo.sh runs this in the background
    while it sets up and sends the history, so the demo's own execution starts warm.
    It also leaves execution on: the demo's moto is its own."""
    url = local_world.moto_url()
    local_world.moto_config(url, {"stepfunctions": {"execute_state_machine": True}})
    queue_url, _ = local_world.create_queues(local_world.client("sqs", url), "warm-up")
    local_world.run_example_workflow(url, queue_url, service=_service(), metric_prefix="warm.up",
                                     jobs=("warm_up",), items=[{}], run_id="warm-up")


def setup() -> None:
    sqs = local_world.client("sqs")
    queue_url, dlq_url = local_world.create_queues(sqs, QUEUE_NAME)
    settings = local_world.module_queue_settings()
    secret = local_world.create_api_key_secret(
        local_world.client("secretsmanager"), _env("DEMO_API_KEY"), SECRET_NAME
    )
    prefix, jobs = _example()
    monitors = local_world.create_job_monitors(_env("MACKEREL_API_BASE"), _env("DEMO_API_KEY"), _service(), prefix, jobs)
    # The monitor the example adds with results_via = "events", for the events run's state machine.
    monitors |= local_world.create_monitors(
        _env("MACKEREL_API_BASE"), _env("DEMO_API_KEY"),
        local_world.workflow_monitor_bodies(_service(), _workflow_prefix(), [local_world.example_state_machine_name(EVENTS_RUN_ID)]),
    )
    _say(f"queue {QUEUE_NAME}: visibility timeout {settings.visibility_timeout_seconds} s, "
         f"to {QUEUE_NAME}-dlq after {settings.max_receive_count} receives "
         f"(kept {settings.dlq_retention_seconds // 86400} days)")
    _say(f"secret {secret}")
    for monitor in monitors.values():
        _say(f"monitor \"{monitor['name']}\": the newest point of {monitor['metric']} "
             f"{monitor['operator']} {monitor['critical']:g} is CRITICAL")
    exports = {
        "QUEUE_URL": queue_url, "DLQ_URL": dlq_url, "SECRET_ID": secret,
        "METRIC_PREFIX": prefix, "JOBS": " ".join(jobs), "WORKFLOW_PREFIX": _workflow_prefix(),
    }
    print("export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in exports.items()))


def workflow() -> None:
    url = local_world.moto_url()
    queue_url = _env("QUEUE_URL")
    prefix, jobs = _example()
    if FAILING_JOB not in jobs:
        sys.exit(f"demo_steps.py: {FAILING_JOB} is not among the example's glue_jobs {jobs}: update FAILING_JOB")
    already_queued = local_world.queue_depth(local_world.client("sqs", url), queue_url)
    run_id = uuid.uuid4().hex[:8]
    run = local_world.run_example_workflow(
        url, queue_url, service=_service(), metric_prefix=prefix, jobs=tuple(jobs),
        failing_jobs=(FAILING_JOB,),
        items=[{"target_date": datetime.now(timezone.utc).date().isoformat()}],
        run_id=run_id, expected_messages=already_queued + len(jobs),
    )
    execution = run["execution"]
    print(f"    execution run-{run_id}: {execution['status']}; Glue runs: "
          + ", ".join(f"{job} {job_run['JobRunState']}" for job, job_run in run["job_runs"].items()))
    sent = []
    for message in run["messages"]:
        try:
            body = json.loads(message["Body"])
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("execution") == execution["executionArn"]:
            sent.append(body)
    print(f"    its sendMessage states left {len(sent)} messages in the queue:")
    for body in sorted(sent, key=lambda b: json.dumps(b)):
        print(f"      {json.dumps(body, separators=(',', ':'))}")
    if len(sent) != len(jobs):
        sys.exit(f"demo_steps.py: expected one message per job ({len(jobs)}), found {len(sent)}: see .demo/moto.log")


def events() -> None:
    """The example deployed with results_via = "events": its workflow has no sendMessage
    state. moto's Glue and Step Functions emit no events, so this step puts the ones AWS
    would emit for the run (each Glue run's end, the execution's start and end) on moto's
    default bus, where rules created from the module's patterns send them to the queue."""
    url = local_world.moto_url()
    queue_url, dlq_url = _env("QUEUE_URL"), _env("DLQ_URL")
    prefix, jobs = _example()
    missing = [job for job in FAILING_JOBS_OF_THE_EVENTS_RUN if job not in jobs]
    if missing:
        sys.exit(f"demo_steps.py: {missing} are not among the example's glue_jobs {jobs}: update FAILING_JOBS_OF_THE_EVENTS_RUN")
    run = local_world.run_example_workflow(
        url, queue_url, jobs=tuple(jobs), failing_jobs=FAILING_JOBS_OF_THE_EVENTS_RUN,
        items=[{"target_date": datetime.now(timezone.utc).date().isoformat()}],
        run_id=EVENTS_RUN_ID, expected_messages=0, via=VIA_EVENTS,
    )
    execution = run["execution"]
    print(f"    execution run-{EVENTS_RUN_ID} of {execution['stateMachineArn'].rsplit(':', 1)[-1]}: {execution['status']}"
          f" ({execution.get('error', 'no error')}); Glue runs: "
          + ", ".join(f"{job} {job_run['JobRunState']}" for job, job_run in run["job_runs"].items()))
    sqs = local_world.client("sqs", url)
    queued_before = local_world.queue_depth(sqs, queue_url)
    patterns = local_world.render_event_patterns(
        glue_job_names=jobs, state_machine_arns=[execution["stateMachineArn"]]
    )
    emitted = local_world.workflow_run_events(run)
    with local_world.event_rules(url, "sfn-mackerel", patterns, queue_url, dlq_url):
        local_world.put_events(url, emitted)
    arrived = local_world.queue_depth(sqs, queue_url) - queued_before
    print(f"    the workflow sent nothing; Glue and Step Functions emitted {len(emitted)} events, "
          f"the rules put {arrived} on the queue (the RUNNING one is left out by the pattern):")
    for entry in emitted:
        detail = json.loads(entry["Detail"])
        subject = detail.get("jobName") or detail["stateMachineArn"].rsplit(":", 1)[-1]
        state = detail.get("state") or detail.get("status")
        print(f"      {entry['DetailType']}: {subject} {state}")
    if arrived != len(emitted) - 1:
        sys.exit(f"demo_steps.py: expected {len(emitted) - 1} events in the queue, found {arrived}: see .demo/moto.log")


def malformed() -> None:
    prefix, _ = _example()
    # The comma after the metric name is missing: what a typo in a MessageBody written
    # as a string (instead of a JSON object) sends, since Step Functions passes strings as they are.
    body = f'{{"service": "{_service()}", "name": "{prefix}.make_order.failed" "value": 0}}'
    local_world.client("sqs").send_message(QueueUrl=_env("QUEUE_URL"), MessageBody=body)
    print(f"    {body}")


def report() -> None:
    prefix, jobs = _example()
    workflow_prefix = _workflow_prefix()
    service = _service()
    monitors = {m["id"]: m for m in _mackerel("/api/v0/monitors")["monitors"]}
    alerts = {a["monitorId"]: a for a in _mackerel("/api/v0/alerts")["alerts"]}
    now = int(time.time())

    def points(name: str) -> list[dict]:
        """The last two hours of the series `name`."""
        try:
            return _mackerel(f"/api/v0/services/{service}/metrics?name={name}"
                             f"&from={now - 7200}&to={now + 60}")["metrics"]
        except urllib.error.HTTPError:
            return []

    def latest(series: list[dict]) -> str:
        return f"{series[-1]['value']:g} ({len(series)} pts)" if series else "-"

    def alert_on(series_prefix: str) -> tuple[dict | None, dict | None, str]:
        """The monitor on `<series_prefix>.alert`, its open alert, and the state to print."""
        monitor = next((m for m in monitors.values() if m["metric"] == f"{series_prefix}.alert"), None)
        alert = alerts.get(monitor["id"]) if monitor else None
        return monitor, alert, f"{alert['status']} (value {alert['value']:g})" if alert else "OK"

    print()
    print(f"What reached Mackerel (service {service}):")
    print(f"  {'job':<14} {'latest failed':>13} {'latest seconds':>15}   alert")
    explanations = []
    for job in jobs:
        monitor, alert, state = alert_on(f"{prefix}.{job}")
        print(f"  {job:<14} {latest(points(f'{prefix}.{job}.failed')):>13} "
              f"{latest(points(f'{prefix}.{job}.seconds')):>15}   {state}")
        if alert and monitor:
            explanations.append(
                f"  {job}: its monitor watches {monitor['metric']}, which the consumer set to 1 when the "
                f"failure arrived and keeps at the newest run's status; the newest run failed, so {alert['status']}."
            )
    for explanation in explanations:
        print(explanation)
    names = _mackerel(f"/api/v0/services/{service}/metric-names")["names"]
    machines = sorted(name[len(workflow_prefix) + 1:-len(".failed")] for name in names
                      if name.startswith(f"{workflow_prefix}.") and name.endswith(".failed"))
    for machine in machines:
        series_prefix = f"{workflow_prefix}.{machine}"
        _, _, state = alert_on(series_prefix)
        print(f"  workflow {machine} (from its Execution Status Change event): "
              f"latest failed {latest(points(f'{series_prefix}.failed'))}, "
              f"seconds {latest(points(f'{series_prefix}.seconds'))}, alert {state}")
    print()
    print(f"Left in the source queue: {local_world.queue_depth(local_world.client('sqs'), _env('QUEUE_URL'))}")


if __name__ == "__main__":
    steps = {"warm-up": warm_up, "setup": setup, "workflow": workflow, "events": events,
             "malformed": malformed, "report": report}
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(steps)}")
    try:
        steps[sys.argv[1]]()
    except (RuntimeError, TimeoutError) as error:
        sys.exit(f"demo_steps.py {sys.argv[1]}: {error}")
