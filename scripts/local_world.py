#!/usr/bin/env python3
"""The local world for the scripts and the Terraform tests: what a user deploys,
stood up on loopback.

Why it exists: the demo, the fault run, the benchmarks and terraform/tests each
used to create their own queue, DLQ, redrive policy, secret and Mackerel monitors,
each with different settings, so none of them ran what `terraform apply` creates.
Here each is created once, with the Terraform module's settings as defaults read
from the HCL itself (python-hcl2), and a caller overrides only what its run needs:

- the results queue and its DLQ with the redrive policy, shaped like
  terraform/modules/sfn-mackerel-pipeline (visibility timeout, maxReceiveCount,
  DLQ retention, all computed from its variables.tf and main.tf);
- the secret holding the Mackerel API key, as the consumer reads it;
- the job monitors of terraform/modules/mackerel-job-monitors, as the Mackerel API
  bodies Terraform would send, created in the Mackerel stand-in;
- the example workflow (terraform/examples/glue-workflow) rendered as Terraform
  renders it and executed in moto's Step Functions, Glue runs failing on request,
  in either of its variants (results_via: sendMessage or events);
- the pipeline module's EventBridge rules (events.tf), their patterns rendered
  from the module's templates as Terraform renders them, with the results queue
  as target, and the events AWS would emit for a workflow run, put into moto's
  EventBridge so that they reach the queue through those rules.

The Rust side of the same world is testkit/src/local.rs; terraform/tests/
test_local_defaults.py checks that its constants equal what this module computes.

Everything talks to moto at $MOTO_URL (scripts/moto_server.py, which adds the
patches the workflow needs) in us-east-1 with static test credentials.

For shell scripts:

    local_world.py queues --name NAME [--visibility-timeout N] [--max-receive-count N]
        creates NAME and NAME-dlq, prints `export QUEUE_URL=... DLQ_URL=...`
    local_world.py defaults
        prints the module's queue settings this module computed from the HCL (JSON)
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import os
import re
import shlex
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
PIPELINE_MODULE = REPO_ROOT / "terraform" / "modules" / "sfn-mackerel-pipeline"
MONITORS_MODULE = REPO_ROOT / "terraform" / "modules" / "mackerel-job-monitors"
EXAMPLE_DIR = REPO_ROOT / "terraform" / "examples" / "glue-workflow"
TERRAFORM_TESTS = REPO_ROOT / "terraform" / "tests"
# AWS's documented samples of the two events the consumer maps (read-only here).
EVENT_FIXTURES = REPO_ROOT / "message" / "tests" / "fixtures"

for _directory in (SCRIPTS_DIR, TERRAFORM_TESTS):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))

from moto_server import FINAL_STATE_ARGUMENT, NEVER_ENDS  # noqa: E402
from render_asl import VIA_SEND_MESSAGE, render_template, render_workflow  # noqa: E402

REGION = "us-east-1"
# moto accepts any credentials; static ones keep a developer's own AWS profile out.
ACCESS_KEY_ID = "test"
SECRET_ACCESS_KEY = "test"
# moto's account; the example's IAM roles are never checked.
ACCOUNT_ID = "123456789012"

EXECUTION_SECONDS = 90
RECEIVE_SECONDS = 20
POLL_SECONDS = 0.2

# The variables through which Debian's libfaketime moves a process's clock
# (scripts/clock-check.sh); a child started with a cleared environment keeps them,
# so it reads the same "now" as the servers it talks to.
MOVED_CLOCK_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")


def with_the_callers_clock(environment: dict[str, str]) -> dict[str, str]:
    """`environment` plus this process's moved-clock variables, if its clock is moved."""
    if "FAKETIME" not in os.environ:
        return dict(environment)
    moved = {name: os.environ[name] for name in MOVED_CLOCK_VARIABLES if name in os.environ}
    return {**environment, **moved}


# --- moto and its clients ---------------------------------------------------------


def moto_url() -> str:
    url = os.environ.get("MOTO_URL", "").rstrip("/")
    if not url:
        raise RuntimeError(
            "MOTO_URL is not set: start moto with `.venv/bin/python scripts/moto_server.py "
            "-H 127.0.0.1 -p PORT` (scripts/lib.sh's start_moto does) and export "
            "MOTO_URL=http://127.0.0.1:PORT"
        )
    return url


def client(service: str, url: str | None = None):
    """A boto3 client for `service` on moto (MOTO_URL unless `url` is given)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=url or moto_url(),
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def moto_config(url: str, config: dict | None = None) -> dict:
    """Reads moto's runtime configuration, or changes it with `config`."""
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=None if config is None else json.dumps(config).encode(),
        method="GET" if config is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else {}


# --- the Terraform module's settings, read from the HCL -----------------------------


def _load_hcl(path: Path) -> dict:
    import hcl2

    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def _unquote(text: str) -> str:
    """python-hcl2 keeps the quotes of string literals and quoted keys; drops them."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _literal(value):
    """A variable's default as Python: strings unquoted, lists and maps element-wise."""
    if isinstance(value, str):
        return _unquote(value)
    if isinstance(value, list):
        return [_literal(item) for item in value]
    if isinstance(value, dict):
        return {_unquote(key): _literal(item) for key, item in value.items() if not key.startswith("__")}
    return value


def variable_defaults(module_dir: Path) -> dict:
    """Each variable of `module_dir`/variables.tf with its default (None without one)."""
    declared = _load_hcl(module_dir / "variables.tf")["variable"]
    return {
        _unquote(name): _literal(attributes.get("default"))
        for block in declared
        for name, attributes in block.items()
    }


def _module_locals(module_dir: Path) -> dict:
    blocks = _load_hcl(module_dir / "main.tf").get("locals", [])
    return {name: value for block in blocks for name, value in block.items() if not name.startswith("__")}


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate_number(raw, resolve, where: str):
    """Evaluates a numeric HCL expression as python-hcl2 gives it (a number, or
    `${...}` of numbers, var.X, local.X, + - * and parentheses); `resolve` gives the
    value of `var.X` / `local.X`. Anything else is refused rather than guessed."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return raw
    text = raw.strip() if isinstance(raw, str) else ""
    if not (text.startswith("${") and text.endswith("}")):
        raise ValueError(f"{where} is not a number or a ${{...}} expression: {raw!r}")
    expression = text[2:-1]

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("var", "local"):
            return resolve(f"{node.value.id}.{node.attr}")
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](value(node.left), value(node.right))
        raise ValueError(
            f"scripts/local_world.py cannot evaluate `{expression}` ({where}): it knows numbers, "
            "var.X, local.X, + - * and parentheses; extend _evaluate_number or simplify the HCL"
        )

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        tree = None  # HCL beyond arithmetic (a conditional, a for expression, ...)
    if tree is None:
        raise ValueError(f"scripts/local_world.py cannot parse `{expression}` ({where}) as arithmetic")
    return value(tree.body)


@dataclass(frozen=True)
class QueueSettings:
    """What the module gives the results queue and its DLQ (sqs.tf)."""

    visibility_timeout_seconds: int
    max_receive_count: int
    dlq_retention_seconds: int


def module_queue_settings(visibility_timeout: int | None = None, max_receive_count: int | None = None) -> QueueSettings:
    """The module's queue settings with its variables' defaults, computed from the HCL:
    main.tf's locals `visibility_timeout_seconds` (6 x function_timeout_seconds +
    maximum_batching_window_seconds) and `dlq_retention_seconds`, variables.tf's
    `max_receive_count`. An override replaces that local or variable."""
    variables = variable_defaults(PIPELINE_MODULE)
    if max_receive_count is not None:
        variables["max_receive_count"] = max_receive_count
    locals_ = _module_locals(PIPELINE_MODULE)
    known: dict[str, object] = {f"var.{name}": value for name, value in variables.items()}
    if visibility_timeout is not None:
        known["local.visibility_timeout_seconds"] = visibility_timeout
    where = PIPELINE_MODULE.relative_to(REPO_ROOT)

    def resolve(reference: str):
        if reference not in known:
            kind, name = reference.split(".", 1)
            if kind != "local" or name not in locals_:
                raise ValueError(f"{reference} is not declared in {where}")
            known[reference] = _evaluate_number(locals_[name], resolve, f"local.{name} in {where}/main.tf")
        return known[reference]

    settings = {
        "visibility_timeout_seconds": resolve("local.visibility_timeout_seconds"),
        "max_receive_count": resolve("var.max_receive_count"),
        "dlq_retention_seconds": resolve("local.dlq_retention_seconds"),
    }
    for name, value in settings.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != int(value) or value < 0:
            raise ValueError(f"{name} from {where} is {value!r}, not a whole number of at least 0")
    return QueueSettings(**{name: int(value) for name, value in settings.items()})


def example_defaults() -> dict:
    """The example workflow's variables (terraform/examples/glue-workflow/variables.tf)
    with their defaults: glue_jobs, metric_prefix, mackerel_service, ..."""
    return variable_defaults(EXAMPLE_DIR)


# --- queues and the secret --------------------------------------------------------


def queue_arn(sqs, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def create_queues(sqs, name: str, visibility_timeout: int | None = None, max_receive_count: int | None = None) -> tuple[str, str]:
    """Creates the results queue `name` and its DLQ `name`-dlq, wired by a redrive
    policy, with the module's settings unless overridden; returns (queue_url, dlq_url).
    Given the module's queue name (`<name>-results`), the DLQ gets the module's name too."""
    settings = module_queue_settings(visibility_timeout, max_receive_count)
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq",
        Attributes={"MessageRetentionPeriod": str(settings.dlq_retention_seconds)},
    )["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": str(settings.max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def create_api_key_secret(secretsmanager, key: str, name: str | None = None) -> str:
    """A secret holding `{"MACKEREL_API_KEY": key}`, as the consumer reads it (the
    module's secret is filled the same way); returns its name. An existing secret of
    that name gets the key as its new value."""
    name = name or f"mackerel-api-key-{uuid.uuid4().hex[:8]}"
    value = json.dumps({"MACKEREL_API_KEY": key})
    try:
        secretsmanager.create_secret(Name=name, SecretString=value)
    except secretsmanager.exceptions.ResourceExistsException:
        secretsmanager.put_secret_value(SecretId=name, SecretString=value)
    return name


def queue_depth(sqs, queue_url: str) -> int:
    """Visible plus in-flight messages."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def peek_messages(sqs, queue_url: str, count: int, seconds: float = RECEIVE_SECONDS) -> list[dict]:
    """Receives until `count` distinct messages arrived (or `seconds` passed), then
    hands them all back: they stay in the queue, visible, for the consumer. Each is
    received once (its receive count, which the redrive policy counts, rises by one)."""
    hide_seconds = int(seconds) + 10  # they come back by themselves if this process dies
    messages: dict[str, dict] = {}
    deadline = time.monotonic() + seconds
    try:
        while len(messages) < count and time.monotonic() < deadline:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hide_seconds,
                WaitTimeSeconds=1,
                AttributeNames=["SentTimestamp"],
                MessageAttributeNames=["All"],
            )
            for message in response.get("Messages", []):
                messages[message["MessageId"]] = message
    finally:
        handles = [message["ReceiptHandle"] for message in messages.values()]
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles[start:start + 10])]
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return list(messages.values())


# --- the job monitors, from terraform/modules/mackerel-job-monitors ----------------


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def _terraform_value(raw, variables: dict, job: str):
    """Evaluates a python-hcl2 attribute of the job monitor: a literal, a quoted string, or
    `${var.X}`, `${local.service_name}`, `${each.key}` placeholders; anything else is an error."""
    if not isinstance(raw, str):
        return raw
    scope = {f"var.{name}": value for name, value in variables.items()}
    scope |= {"each.key": job, "local.service_name": variables["service_name"]}
    for expression in _PLACEHOLDER.findall(raw):
        if expression not in scope:
            raise ValueError(
                f"scripts/local_world.py cannot evaluate `${{{expression}}}` of the job monitor in "
                f"{MONITORS_MODULE.relative_to(REPO_ROOT)}/main.tf: teach _terraform_value that expression"
            )
    whole = _PLACEHOLDER.fullmatch(raw)
    if whole:  # `${var.notification_interval}` keeps the variable's type
        return scope[whole.group(1)]
    return _PLACEHOLDER.sub(lambda match: str(scope[match.group(1)]), _unquote(raw))


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _monitor_bodies(resource: str, variables: dict, keys) -> dict[str, dict]:
    """The Mackerel API body of each instance (`for_each` key) of the monitoring module's
    `mackerel_monitor.<resource>`, as Terraform would create it: name, notification
    interval and service_metric settings read from the module's main.tf, with its
    variables' defaults (notification_interval among them) and `variables` over them."""
    variables = variable_defaults(MONITORS_MODULE) | variables
    resources = _load_hcl(MONITORS_MODULE / "main.tf")["resource"]
    (monitor,) = [
        block[name]
        for declared in resources
        for kind, block in declared.items()
        if _unquote(kind) == "mackerel_monitor"
        for name in block
        if _unquote(name) == resource
    ]
    (service_metric,) = monitor["service_metric"]

    def body(key: str) -> dict:
        fields = {"name": monitor["name"], "notification_interval": monitor["notification_interval"]}
        fields |= {field: value for field, value in service_metric.items() if not field.startswith("__")}
        api_body = {"type": "service", "warning": None, "critical": None}
        api_body |= {_camel_case(field): _terraform_value(value, variables, key) for field, value in fields.items()}
        return api_body

    return {key: body(key) for key in keys}


def job_monitor_bodies(service: str, metric_prefix: str, jobs: tuple[str, ...] | list[str]) -> dict[str, dict]:
    """Each job's `mackerel_monitor.job_failed`, as the Mackerel API body Terraform would send."""
    variables = {"service_name": service, "metric_prefix": metric_prefix, "job_names": list(jobs)}
    return _monitor_bodies("job_failed", variables, jobs)


def workflow_monitor_bodies(service: str, workflow_metric_prefix: str, names) -> dict[str, dict]:
    """Each state machine's `mackerel_monitor.workflow_failed` (on the series its Execution
    Status Change events write), as the Mackerel API body Terraform would send."""
    variables = {"service_name": service, "workflow_metric_prefix": workflow_metric_prefix, "workflow_names": list(names)}
    return _monitor_bodies("workflow_failed", variables, names)


def create_monitors(base_url: str, api_key: str, bodies: dict[str, dict]) -> dict[str, dict]:
    """Creates monitors in the Mackerel stand-in; returns each created monitor by its key."""
    return {key: mackerel_request(base_url, api_key, "/api/v0/monitors", body) for key, body in bodies.items()}


def create_job_monitors(base_url: str, api_key: str, service: str, metric_prefix: str, jobs) -> dict[str, dict]:
    """Creates the module's job monitors in the Mackerel stand-in; returns each job's created monitor."""
    return create_monitors(base_url, api_key, job_monitor_bodies(service, metric_prefix, jobs))


def mackerel_request(base_url: str, api_key: str, path: str, payload=None, method: str | None = None):
    """One Mackerel API call (the stand-in's, here); the decoded JSON answer."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method=method or ("GET" if payload is None else "POST"),
        headers={"X-Api-Key": api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


# --- the example workflow in moto's Step Functions ----------------------------------


def example_state_machine_name(run_id: str) -> str:
    """The name run_example_workflow gives the state machine of run `run_id`."""
    return f"glue-workflow-{run_id}"


@contextmanager
def state_machines_executing(url: str):
    """Turns on moto's Step Functions execution (off in stock moto), then restores the setting."""
    before = moto_config(url).get("stepfunctions", {}).get("execute_state_machine", False)
    moto_config(url, {"stepfunctions": {"execute_state_machine": True}})
    try:
        yield url
    finally:
        moto_config(url, {"stepfunctions": {"execute_state_machine": before}})


def put_glue_job(glue, name: str, final_state: str | None = None) -> None:
    """Creates the Glue job, or resets it when an earlier run on a shared server left it.
    With `final_state` (FAILED, TIMEOUT, ...) every run of it ends that way
    (scripts/moto_server.py's FINAL_STATE_ARGUMENT); without, runs succeed."""
    job = {
        "Role": f"arn:aws:iam::{ACCOUNT_ID}:role/glue-local",
        "Command": {"Name": "glueetl", "ScriptLocation": f"s3://scripts/{name}.py"},
        "DefaultArguments": {FINAL_STATE_ARGUMENT: final_state} if final_state else {},
    }
    try:
        glue.create_job(Name=name, **job)
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=name, JobUpdate=job)


def wait_for_execution(sfn, execution_arn: str, seconds: float = EXECUTION_SECONDS) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(POLL_SECONDS)
    raise TimeoutError(
        f"the workflow {execution_arn} was still RUNNING after {seconds:g}s: see moto's log "
        "for the state it is stuck in (a Glue run that never ends, a sendMessage retrying)"
    )


def run_example_workflow(
    url: str,
    queue_url: str,
    *,
    service: str | None = None,
    metric_prefix: str | None = None,
    jobs: tuple[str, ...],
    failing_jobs: tuple[str, ...] = (),
    items: list[dict],
    run_id: str | None = None,
    expected_messages: int | None = None,
    overlap_retry: tuple[int, int] | None = None,
    running_jobs: tuple[str, ...] = (),
    via: str = VIA_SEND_MESSAGE,
) -> dict:
    """Executes the example workflow once in moto's Step Functions (execution must be on:
    state_machines_executing), with the Glue runs of `failing_jobs` ending FAILED and a
    run of each of `running_jobs` already going (one that never ends, so give such a
    job a name no other run uses), as when executions overlap; `overlap_retry`
    overrides the workflow's (interval, attempts). `via` is the example's results_via:
    the sendMessage variant (which needs `service` and `metric_prefix`) sends each
    job's result to `queue_url`; the events variant sends nothing (pass
    `expected_messages=0`: nothing is peeked then).
    Returns the execution, the messages its sendMessage states left in the queue (peeked,
    never deleted: `expected_messages` of them, by default one per job and item), each
    job's latest Glue run (`job_runs`) and every Glue run this execution started, per
    job (`runs`, oldest first)."""
    run_id = run_id or uuid.uuid4().hex[:8]
    glue, sqs, sfn = client("glue", url), client("sqs", url), client("stepfunctions", url)
    for job in jobs:
        put_glue_job(glue, job, "FAILED" if job in failing_jobs else None)
    for job in running_jobs:
        glue.start_job_run(JobName=job, Arguments={FINAL_STATE_ARGUMENT: NEVER_ENDS})
    # Runs left by earlier executions (a shared server keeps them) are not this one's.
    earlier_runs = {job: {run["Id"] for run in glue.get_job_runs(JobName=job)["JobRuns"]} for job in jobs}

    retry = {} if overlap_retry is None else {"overlap_retry": overlap_retry}
    definition = render_workflow(
        via=via, queue_url=queue_url, service=service, metric_prefix=metric_prefix, jobs=tuple(jobs), **retry
    )
    state_machine_arn = sfn.create_state_machine(
        name=example_state_machine_name(run_id),
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/glue-workflow",
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=f"run-{run_id}",
        input=json.dumps({"items": items}),
    )["executionArn"]
    execution = wait_for_execution(sfn, execution_arn)
    count = len(jobs) * len(items) if expected_messages is None else expected_messages
    messages = peek_messages(sqs, queue_url, count) if count else []
    all_runs = {job: glue.get_job_runs(JobName=job)["JobRuns"] for job in jobs}
    return {
        "execution": execution,
        "messages": messages,
        "job_runs": {job: job_runs[-1] for job, job_runs in all_runs.items() if job_runs},
        "runs": {
            job: [run for run in job_runs if run["Id"] not in earlier_runs[job]]
            for job, job_runs in all_runs.items()
        },
    }


# --- AWS's own events, through the pipeline module's EventBridge rules ---------------

# events.tf's rules, by its key: the pattern template and its one placeholder.
EVENT_PATTERN_TEMPLATES = {
    "glue_jobs": (PIPELINE_MODULE / "glue-job-events.pattern.json.tftpl", "job_name_filter"),
    "workflows": (PIPELINE_MODULE / "workflow-events.pattern.json.tftpl", "state_machine_filter"),
}
EVENT_TARGET_ID = "sfn-mackerel-results"
# events.tf's input transformer of the workflow rule's target (local.workflow_event_input).
WORKFLOW_EVENT_INPUT_PATHS = PIPELINE_MODULE / "workflow-events.input-paths.json"
WORKFLOW_EVENT_INPUT_TEMPLATE = PIPELINE_MODULE / "workflow-events.input-template.txt"
# put_events takes at most 10 entries per call (AWS and moto alike).
PUT_EVENTS_BATCH = 10

# Terraform's jsonencode() escapes these where Python's json leaves them as they are.
_TERRAFORM_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def terraform_jsonencode(value) -> str:
    """Terraform's jsonencode(): compact, object keys sorted, non-ASCII as UTF-8, and
    <, >, &, U+2028 and U+2029 escaped as \\u003c ... (control characters, which no job
    name or ARN holds, aside)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for character, escape in _TERRAFORM_JSON_ESCAPES.items():
        text = text.replace(character, escape)
    return text


def event_filter(values=(), prefixes=()) -> str:
    """The mirror of the filter locals in terraform/modules/sfn-mackerel-pipeline/events.tf
    (glue_job_name_filter, state_machine_filter): a JSON array of the names (as strings)
    and prefixes (as {"prefix": ...}) joined as text, or [{"exists":true}] when both are
    empty. Change one, change the other: the patterns the tests put into moto must be
    the text Terraform renders."""
    items = [terraform_jsonencode(value) for value in values]
    items += [terraform_jsonencode({"prefix": prefix}) for prefix in prefixes]
    return f"[{','.join(items)}]" if items else terraform_jsonencode([{"exists": True}])


def render_event_patterns(*, glue_job_names=(), glue_job_name_prefixes=(), state_machine_arns=()) -> dict[str, str]:
    """Each rule's event pattern, by events.tf's key, rendered from the module's template
    with the module's variables of the same names, exactly as templatefile() renders it."""
    filters = {
        "glue_jobs": event_filter(glue_job_names, glue_job_name_prefixes),
        "workflows": event_filter(state_machine_arns),
    }
    return {
        key: render_template(template, {placeholder: filters[key]})
        for key, (template, placeholder) in EVENT_PATTERN_TEMPLATES.items()
    }


def event_retry_policy() -> dict:
    """The targets' retry policy with the module's defaults (variables.tf)."""
    variables = variable_defaults(PIPELINE_MODULE)
    return {
        "MaximumEventAgeInSeconds": variables["event_retry_max_age_seconds"],
        "MaximumRetryAttempts": variables["event_retry_attempts"],
    }


@contextmanager
def event_rules(url: str, name: str, patterns: dict[str, str], queue_url: str, dlq_url: str):
    """Creates a rule per pattern on moto's default bus (`<name>-<key>`) with the results
    queue as its target, the module's retry policy and the DLQ as the target's
    dead-letter queue, and for the workflow rule its input transformer, as events.tf does; yields each rule's ARN by key, then deletes
    them, so that a shared server's later events do not reach a queue no one reads.
    (moto does not check the queues' policies, which events.tf adds for EventBridge;
    terraform/tests/test_terraform_wiring.py checks those.)"""
    events, sqs = client("events", url), client("sqs", url)
    target = {
        "Id": EVENT_TARGET_ID,
        "Arn": queue_arn(sqs, queue_url),
        "RetryPolicy": event_retry_policy(),
        "DeadLetterConfig": {"Arn": queue_arn(sqs, dlq_url)},
    }
    created: dict[str, str] = {}
    try:
        for key, pattern in patterns.items():
            rule = f"{name}-{key}"
            created[rule] = events.put_rule(Name=rule, EventPattern=pattern, State="ENABLED")["RuleArn"]
            targets = [target | ({"InputTransformer": workflow_event_input_transformer()} if key == "workflows" else {})]
            failed = events.put_targets(Rule=rule, Targets=targets)["FailedEntries"]
            if failed:
                raise RuntimeError(f"put_targets on {rule} failed: {failed}")
        yield {key: created[f"{name}-{key}"] for key in patterns}
    finally:
        for rule in created:
            events.remove_targets(Rule=rule, Ids=[EVENT_TARGET_ID])
            events.delete_rule(Name=rule)


def workflow_event_input_transformer() -> dict:
    """The workflow rule's input transformer, as events.tf reads it from the module's two
    files (the template with its surrounding whitespace trimmed, as trimspace() does)."""
    return {
        "InputPathsMap": json.loads(WORKFLOW_EVENT_INPUT_PATHS.read_text(encoding="utf-8")),
        "InputTemplate": WORKFLOW_EVENT_INPUT_TEMPLATE.read_text(encoding="utf-8").strip(),
    }


def epoch_seconds(value) -> float:
    """A time as moto's APIs give it, in epoch seconds: a datetime (boto3 parses every
    timestamp into one; a naive one is UTC, as moto keeps its times), ISO 8601 text, or
    a number of epoch seconds or milliseconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, str):
        return epoch_seconds(datetime.fromisoformat(value.replace("Z", "+00:00")))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)  # 1e11 s is the year 5138
    raise TypeError(f"not a time: {value!r}")


def _epoch_ms(value) -> int:
    return round(epoch_seconds(value) * 1000)


def _sample(file_name: str) -> dict:
    return json.loads((EVENT_FIXTURES / file_name).read_text(encoding="utf-8"))


def _entry(sample: dict, detail: dict, time_ms: int, resources: list[str]) -> dict:
    """A put_events entry for an event shaped like `sample`, with `detail`, at `time_ms`."""
    return {
        "Source": sample["source"],
        "DetailType": sample["detail-type"],
        "Detail": json.dumps(detail),
        "Resources": resources,
        "Time": datetime.fromtimestamp(time_ms / 1000, timezone.utc),
    }


# The severity Glue gives each end of a run in its events (AWS's samples).
GLUE_EVENT_SEVERITY = {"SUCCEEDED": "INFO", "STOPPED": "INFO", "TIMEOUT": "WARN", "FAILED": "ERROR", "ERROR": "ERROR"}


def glue_job_state_change(job_run: dict) -> dict:
    """The put_events entry of the Glue Job State Change AWS emits when `job_run` (a
    JobRun as get_job_runs gives it) ends: AWS's sample with the run's job, id and state,
    at the run's CompletedOn."""
    sample = _sample("glue-job-state-change.json")
    state = job_run["JobRunState"]
    detail = sample["detail"] | {
        "jobName": job_run["JobName"],
        "jobRunId": job_run["Id"],
        "state": state,
        "severity": GLUE_EVENT_SEVERITY.get(state, "INFO"),
        "message": job_run.get("ErrorMessage") or f"Job run {state.lower()}",
    }
    return _entry(sample, detail, _epoch_ms(job_run["CompletedOn"]), [])


def execution_status_change(execution: dict, status: str | None = None) -> dict:
    """The put_events entry of the Step Functions Execution Status Change AWS emits for
    `execution` (as describe_execution gives it): RUNNING at its startDate (stopDate
    null), or its final status (default) at its stopDate; dates in epoch ms, as AWS
    sends them."""
    sample = _sample("sfn-execution-status-change.json")
    status = status or execution["status"]
    start_ms = _epoch_ms(execution["startDate"])
    stop_ms = None if status == "RUNNING" else _epoch_ms(execution["stopDate"])
    detail = sample["detail"] | {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": status,
        "startDate": start_ms,
        "stopDate": stop_ms,
        "input": execution.get("input", "{}"),
        "output": None if stop_ms is None else execution.get("output"),
    }
    return _entry(sample, detail, start_ms if stop_ms is None else stop_ms, [execution["executionArn"]])


def workflow_run_events(run: dict) -> list[dict]:
    """The events AWS would emit for a run of run_example_workflow, as put_events
    entries: a Glue Job State Change for each of its Glue runs that ended, then the
    execution's Status Change when it started (RUNNING) and when it ended."""
    entries = [
        glue_job_state_change(job_run)
        for job_runs in run["runs"].values()
        for job_run in job_runs
        if job_run["JobRunState"] in GLUE_EVENT_SEVERITY
    ]
    entries.append(execution_status_change(run["execution"], "RUNNING"))
    if run["execution"]["status"] != "RUNNING":
        entries.append(execution_status_change(run["execution"]))
    return entries


def put_events(url: str, entries: list[dict]) -> list[str]:
    """Puts events on moto's default bus, 10 per call; returns their ids (each entry gets
    a fresh one). Real EventBridge refuses put_events with a source starting with `aws.`
    (only AWS services emit those); moto accepts it, which is what lets the tests stand
    in for Glue and Step Functions. moto then delivers, synchronously, the whole event
    (its envelope: id, time from the entry's Time, source, detail-type, detail) as the
    body of an SQS message to every rule's target whose pattern matches."""
    events = client("events", url)
    ids: list[str] = []
    for start in range(0, len(entries), PUT_EVENTS_BATCH):
        response = events.put_events(Entries=entries[start:start + PUT_EVENTS_BATCH])
        if response["FailedEntryCount"]:
            raise RuntimeError(f"put_events refused entries: {response['Entries']}")
        ids += [entry["EventId"] for entry in response["Entries"]]
    return ids


# --- the command line, for shell scripts ------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    queues = commands.add_parser("queues", help="create a results queue and its DLQ; print export lines")
    queues.add_argument("--name", required=True, help="the queue's name; the DLQ is NAME-dlq")
    queues.add_argument("--visibility-timeout", type=int, help="seconds (default: the module's)")
    queues.add_argument("--max-receive-count", type=int, help="receives before the DLQ (default: the module's)")
    commands.add_parser("defaults", help="print the module's queue settings (JSON)")
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.command == "defaults":
            print(json.dumps(asdict(module_queue_settings())))
            return 0
        queue_url, dlq_url = create_queues(
            client("sqs"), args.name, args.visibility_timeout, args.max_receive_count
        )
    except (RuntimeError, ValueError, ClientError) as error:
        print(f"local_world.py: {error}", file=sys.stderr)
        return 2
    except BotoCoreError as error:
        print(f"local_world.py: {error}: is moto running at MOTO_URL={os.environ.get('MOTO_URL')}?", file=sys.stderr)
        return 3
    print(f"export QUEUE_URL={shlex.quote(queue_url)} DLQ_URL={shlex.quote(dlq_url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
