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
free loopback port and stops by its process id.

Then the consumer (`sfn-mackerel-consumer poll`) drains the queue into the Mackerel
stand-in, where the monitoring module's job monitors were created: make_alarm's
monitor has an open CRITICAL alert, the other jobs' monitors none, the stand-in
stores each job's `failed` (and the succeeded jobs' `seconds`) at the message's
minute, and nothing is set aside in the DLQ. A previous, successful run (`failed =
0` an hour earlier) is posted first, as on any day but the first: the monitors
average the latest `failure_duration` points and evaluate nothing with fewer. Both binaries come from `cargo build --workspace --bins`
($SFN_MACKEREL_BIN_DIR, else target/debug under $CARGO_TARGET_DIR or the repository).

The received bodies are written as JSON lines to $SFN_MACKEREL_WORKFLOW_MESSAGES when
set (and printed). Reading them leaves the messages in the queue for the consumer:
they are received with a zero visibility timeout and never deleted.

    .venv/bin/python -m pytest terraform/tests
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import boto3
import hcl2
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_asl import DEFAULT_JOBS, render_workflow  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = REPO_ROOT / "scripts" / "moto_server.py"
REGION = "us-east-1"
SERVICE = "ORGANIZATION"
METRIC_PREFIX = "test.glue.job"
FAILING_JOB = "make_alarm"
# scripts/moto_server.py ends a run in the state this job argument names.
FINAL_STATE_ARGUMENT = "--moto-final-state"
WORKFLOW_INPUT = {"items": [{"target_date": "2026-11-29"}]}

SERVER_START_SECONDS = 30
EXECUTION_SECONDS = 90
RECEIVE_SECONDS = 20
POLL_SECONDS = 0.5


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/moto-api/config", timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def moto_url():
    if os.environ.get("MOTO_URL"):
        yield os.environ["MOTO_URL"].rstrip("/")
        return
    port = _free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _answers(url):
            if server.poll() is not None:
                pytest.fail(f"scripts/moto_server.py exited: {server.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"scripts/moto_server.py did not answer on {url} within {SERVER_START_SECONDS}s")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _moto_config(url: str, config: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=None if config is None else json.dumps(config).encode(),
        method="GET" if config is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else {}


@pytest.fixture(scope="module")
def executing_state_machines(moto_url):
    """Turns on moto's Step Functions execution for this module, then restores the setting."""
    before = _moto_config(moto_url).get("stepfunctions", {}).get("execute_state_machine", False)
    _moto_config(moto_url, {"stepfunctions": {"execute_state_machine": True}})
    yield moto_url
    _moto_config(moto_url, {"stepfunctions": {"execute_state_machine": before}})


def _client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _put_glue_job(glue, name: str, default_arguments: dict[str, str]) -> None:
    """Creates the job, or resets it when an earlier run on a shared server left it."""
    job = {
        "Role": "arn:aws:iam::123456789012:role/glue-test",
        "Command": {"Name": "glueetl", "ScriptLocation": f"s3://scripts/{name}.py"},
        "DefaultArguments": default_arguments,
    }
    try:
        glue.create_job(Name=name, **job)
    except ClientError as error:
        if error.response["Error"]["Code"] != "AlreadyExistsException":
            raise
        glue.update_job(JobName=name, JobUpdate=job)


def _wait_for_execution(sfn, execution_arn: str) -> dict:
    deadline = time.monotonic() + EXECUTION_SECONDS
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(POLL_SECONDS)
    pytest.fail(f"the workflow was still RUNNING after {EXECUTION_SECONDS}s")


def _receive_all(sqs, queue_url: str, expected: int) -> list[dict]:
    """Receives until `expected` distinct messages arrived, leaving them in the queue."""
    messages: dict[str, dict] = {}
    deadline = time.monotonic() + RECEIVE_SECONDS
    while len(messages) < expected and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            WaitTimeSeconds=1,
            AttributeNames=["SentTimestamp"],
        )
        for message in response.get("Messages", []):
            messages[message["MessageId"]] = message
    return list(messages.values())


def _parse_rfc3339(text: str) -> datetime:
    # AWS prints `...43.229Z`, moto `...43.229123+00:00`: both are RFC 3339.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def workflow_run(executing_state_machines):
    """Runs the workflow once; returns the execution, the message bodies, the Glue runs and the queue."""
    url = executing_state_machines
    run_id = uuid.uuid4().hex[:8]
    glue, sqs, sfn = _client("glue", url), _client("sqs", url), _client("stepfunctions", url)

    for job in DEFAULT_JOBS:
        _put_glue_job(glue, job, {FINAL_STATE_ARGUMENT: "FAILED"} if job == FAILING_JOB else {})
    queue_url = sqs.create_queue(QueueName=f"sfn-mackerel-workflow-{run_id}")["QueueUrl"]
    definition = render_workflow(queue_url=queue_url, service=SERVICE, metric_prefix=METRIC_PREFIX)
    state_machine_arn = sfn.create_state_machine(
        name=f"glue-workflow-{run_id}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/glue-workflow",
    )["stateMachineArn"]

    execution_arn = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=f"run-{run_id}",
        input=json.dumps(WORKFLOW_INPUT),
    )["executionArn"]
    execution = _wait_for_execution(sfn, execution_arn)
    messages = _receive_all(sqs, queue_url, expected=len(DEFAULT_JOBS))
    bodies = [json.loads(message["Body"]) for message in messages]

    lines = "".join(json.dumps(body, separators=(",", ":")) + "\n" for body in bodies)
    print(lines, end="")
    if os.environ.get("SFN_MACKEREL_WORKFLOW_MESSAGES"):
        Path(os.environ["SFN_MACKEREL_WORKFLOW_MESSAGES"]).write_text(lines, encoding="utf-8")

    job_runs = {job: glue.get_job_runs(JobName=job)["JobRuns"][-1] for job in DEFAULT_JOBS}
    return {"execution": execution, "bodies": bodies, "job_runs": job_runs, "queue_url": queue_url}


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
        }


def test_every_message_is_timestamped_within_the_execution(workflow_run):
    execution = workflow_run["execution"]
    for body in workflow_run["bodies"]:
        sent_at = _parse_rfc3339(body["time"])
        assert sent_at.tzinfo is not None, body
        assert execution["startDate"] <= sent_at <= execution["stopDate"], (body, execution)


def test_each_glue_run_receives_the_item(workflow_run):
    for job, run in workflow_run["job_runs"].items():
        assert json.loads(run["Arguments"]["--item"]) == WORKFLOW_INPUT["items"][0], job


# --- The Mackerel leg: the consumer drains the queue into the Mackerel stand-in. ---

MONITORS_MODULE = REPO_ROOT / "terraform" / "modules" / "mackerel-job-monitors"
STANDIN_API_KEY = "workflow-test-key"
STANDIN_START_SECONDS = 15
CONSUMER_IDLE_SECONDS = 3
CONSUMER_SECONDS = 60
# The previous run of the workflow, posted before this one's results: Mackerel
# averages the latest `failure_duration` points, and with fewer points than that
# it evaluates nothing (the stand-in's guess 12), so a first-ever run alerts on nothing.
PREVIOUS_RUN_SECONDS_EARLIER = 3600
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def _binary(name: str) -> Path:
    """The built binary: in $SFN_MACKEREL_BIN_DIR, else cargo's debug dir (honouring CARGO_TARGET_DIR)."""
    if os.environ.get("SFN_MACKEREL_BIN_DIR"):
        directory = Path(os.environ["SFN_MACKEREL_BIN_DIR"])
    else:
        directory = REPO_ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug"
    path = directory / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: run `cargo build --workspace --bins` first "
            "(or set SFN_MACKEREL_BIN_DIR to the directory holding the built binaries)"
        )
    return path


def _terraform_value(raw, variables: dict, job: str):
    """Evaluates a python-hcl2 attribute of the job monitor: a literal, a quoted string, or
    `${var.X}`, `${local.service_name}`, `${each.key}` placeholders; anything else is an error."""
    if not isinstance(raw, str):
        return raw
    scope = {f"var.{name}": value for name, value in variables.items()}
    scope |= {"each.key": job, "local.service_name": variables["service_name"]}
    for expression in _PLACEHOLDER.findall(raw):
        if expression not in scope:
            raise ValueError(f"the test cannot evaluate `${{{expression}}}` of the job monitor in {MONITORS_MODULE}/main.tf")
    whole = _PLACEHOLDER.fullmatch(raw)
    if whole:  # `${var.failure_duration}` keeps the variable's type
        return scope[whole.group(1)]
    text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return _PLACEHOLDER.sub(lambda match: str(scope[match.group(1)]), text)


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _job_monitor_bodies(service: str, metric_prefix: str, jobs: tuple[str, ...]) -> dict[str, dict]:
    """The Mackerel API body of each job's `mackerel_monitor.job_failed`, as Terraform would
    create it: name, notification interval and service_metric settings read from the
    module's main.tf, with its variables' defaults (failure_duration among them)."""
    def unquote(key: str) -> str:
        return key.strip('"')

    with (MONITORS_MODULE / "variables.tf").open(encoding="utf-8") as handle:
        declared = hcl2.load(handle)["variable"]
    variables = {
        unquote(name): attributes.get("default") for block in declared for name, attributes in block.items()
    }
    variables |= {"service_name": service, "metric_prefix": metric_prefix, "job_names": list(jobs)}
    with (MONITORS_MODULE / "main.tf").open(encoding="utf-8") as handle:
        resources = hcl2.load(handle)["resource"]
    (monitor,) = [
        block[name]
        for resource in resources
        for kind, block in resource.items()
        if unquote(kind) == "mackerel_monitor"
        for name in block
        if unquote(name) == "job_failed"
    ]
    (service_metric,) = monitor["service_metric"]

    def body(job: str) -> dict:
        fields = {"name": monitor["name"], "notification_interval": monitor["notification_interval"]}
        fields |= {key: value for key, value in service_metric.items() if not key.startswith("__")}
        api_body = {"type": "service", "warning": None, "critical": None}
        api_body |= {_camel_case(key): _terraform_value(value, variables, job) for key, value in fields.items()}
        return api_body

    return {job: body(job) for job in jobs}


def _standin_request(base_url: str, path: str, payload=None):
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"X-Api-Key": STANDIN_API_KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _read_listening_line(process: subprocess.Popen, deadline: float) -> str:
    """Returns the stand-in's base URL from its `... listening on http://...` line."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    printed = b""
    try:
        while b"\n" not in printed and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if selector.select(timeout=0.2):
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    break
                printed += chunk
    finally:
        selector.close()
    match = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", printed)
    return match.group(1).decode() if match else ""


@pytest.fixture(scope="module")
def mackerel_standin():
    """The Mackerel stand-in on a free loopback port, knowing SERVICE; stopped by its pid."""
    binary = _binary("mackerel-standin")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--api-key", STANDIN_API_KEY, "--service", SERVICE],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            base_url = _read_listening_line(process, time.monotonic() + STANDIN_START_SECONDS)
            if not base_url:
                log.seek(0)
                pytest.fail(
                    f"{binary.name} printed no listening address within {STANDIN_START_SECONDS}s: "
                    f"{log.read().decode(errors='replace')[-2000:]}"
                )
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            process.stdout.close()


def _queue_depth(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _minute_of(body: dict) -> int:
    return int(_parse_rfc3339(body["time"]).timestamp()) // 60 * 60


@pytest.fixture(scope="module")
def drained_into_mackerel(workflow_run, moto_url, mackerel_standin):
    """Creates the module's job monitors in the stand-in, posts the previous run (every job
    succeeded, an hour earlier), then runs the consumer over the workflow's queue until it idles."""
    monitors = {
        job: _standin_request(mackerel_standin, "/api/v0/monitors", body)
        for job, body in _job_monitor_bodies(SERVICE, METRIC_PREFIX, DEFAULT_JOBS).items()
    }
    previous_run = min(_minute_of(body) for body in workflow_run["bodies"]) - PREVIOUS_RUN_SECONDS_EARLIER
    _standin_request(
        mackerel_standin,
        f"/api/v0/services/{SERVICE}/tsdb",
        [{"name": f"{METRIC_PREFIX}.{job}.failed", "time": previous_run, "value": 0} for job in DEFAULT_JOBS],
    )

    sqs = _client("sqs", moto_url)
    dlq_url = sqs.create_queue(QueueName=f"sfn-mackerel-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    # Only what the consumer needs, so no QUEUE_URL, AWS_PROFILE, ... of the caller leaks in.
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MACKEREL_API_KEY": STANDIN_API_KEY,
        "MACKEREL_API_BASE": mackerel_standin,
        "DLQ_URL": dlq_url,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    consumer = _binary("sfn-mackerel-consumer")
    try:
        finished = subprocess.run(
            [str(consumer), "poll", "--queue-url", workflow_run["queue_url"],
             "--exit-when-idle-secs", str(CONSUMER_IDLE_SECONDS), "--batching-window-ms", "500"],
            env=environment,
            capture_output=True,
            timeout=CONSUMER_SECONDS,
        )
    except subprocess.TimeoutExpired as error:  # subprocess.run has killed it
        pytest.fail(f"the consumer still ran after {CONSUMER_SECONDS}s: {(error.stderr or b'').decode()[-2000:]}")
    return {
        "consumer": finished,
        "monitor_ids": {job: monitor["id"] for job, monitor in monitors.items()},
        "alerts": _standin_request(mackerel_standin, "/api/v0/alerts?withClosed=true")["alerts"],
        "dump": _standin_request(mackerel_standin, "/_standin/dump"),
        "queue_depth": _queue_depth(sqs, workflow_run["queue_url"]),
        "dlq_depth": _queue_depth(sqs, dlq_url),
    }


def _stored_points(dump: dict, metric: str) -> dict[int, float]:
    (service,) = [service for service in dump["services"] if service["name"] == SERVICE]
    series = [entry for entry in service["metrics"] if entry["name"] == metric]
    return {point["time"]: point["value"] for entry in series for point in entry["points"]}


def test_the_consumer_drains_the_queue_and_sets_nothing_aside(drained_into_mackerel):
    finished = drained_into_mackerel["consumer"]
    assert finished.returncode == 0, finished.stderr.decode(errors="replace")[-4000:]
    assert drained_into_mackerel["queue_depth"] == 0
    assert drained_into_mackerel["dlq_depth"] == 0, finished.stderr.decode(errors="replace")[-4000:]


def test_the_failed_jobs_monitor_has_an_open_critical_alert(drained_into_mackerel):
    monitor_id = drained_into_mackerel["monitor_ids"][FAILING_JOB]
    alerts = [alert for alert in drained_into_mackerel["alerts"] if alert["monitorId"] == monitor_id]
    assert len(alerts) == 1, drained_into_mackerel["alerts"]
    assert alerts[0]["status"] == "CRITICAL"
    assert alerts[0].get("closedAt") is None


def test_the_succeeded_jobs_monitors_raise_no_alert(drained_into_mackerel):
    for job, monitor_id in drained_into_mackerel["monitor_ids"].items():
        if job == FAILING_JOB:
            continue
        alerts = [alert for alert in drained_into_mackerel["alerts"] if alert["monitorId"] == monitor_id]
        assert alerts == [], job


def test_mackerel_stores_each_jobs_failed_flag_at_its_minute(workflow_run, drained_into_mackerel):
    for job in DEFAULT_JOBS:
        minute = _minute_of(_body_for(workflow_run["bodies"], job))
        points = _stored_points(drained_into_mackerel["dump"], f"{METRIC_PREFIX}.{job}.failed")
        assert points.get(minute) == (1 if job == FAILING_JOB else 0), (job, points)


def test_mackerel_stores_the_execution_time_of_succeeded_jobs_only(workflow_run, drained_into_mackerel):
    for job in DEFAULT_JOBS:
        points = _stored_points(drained_into_mackerel["dump"], f"{METRIC_PREFIX}.{job}.seconds")
        if job == FAILING_JOB:
            assert points == {}, points
        else:
            minute = _minute_of(_body_for(workflow_run["bodies"], job))
            assert points == {minute: workflow_run["job_runs"][job]["ExecutionTime"]}, (job, points)
