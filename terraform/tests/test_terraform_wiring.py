"""What `terraform validate` would catch in the wiring, checked without a terraform binary.

For every configuration directory under terraform/ (each module, the example):
- every `var.X` and `local.X` it uses is declared in that directory;
- every module call passes only variables the module declares, and all the
  variables it requires (those without a default);
- every `module.M.O` it uses is an output of module M;
- the variables given to templatefile() are the placeholders its template uses.

And the pipeline module's settings a review must not lose: the queue alarms'
missing data, the consumer role's trust, and the EventBridge rules' delivery
(queue policies, retry policy and DLQ, patterns, the consumer's EVENT_* settings).

    .venv/bin/python -m pytest terraform/tests
"""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

TERRAFORM_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TERRAFORM_DIR.parent
CONFIG_DIRS = sorted({path.parent for path in TERRAFORM_DIR.rglob("*.tf")})


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _parsed(directory: Path) -> list[dict]:
    out = []
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            out.append(hcl2.load(handle))
    return out


def _code(directory: Path) -> str:
    """The directory's .tf text without comment lines (comments may mention names)."""
    return "\n".join(
        line
        for path in sorted(directory.glob("*.tf"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )


def _blocks(directory: Path, kind: str) -> dict[str, dict]:
    named: dict[str, dict] = {}
    for document in _parsed(directory):
        for block in document.get(kind, []):
            for name, body in block.items():
                named[_unquote(name)] = body
    return named


def _locals(directory: Path) -> set[str]:
    return {
        name
        for document in _parsed(directory)
        for block in document.get("locals", [])
        for name in block
        if not name.startswith("__")
    }


def _ids(directory: Path) -> list[str]:
    return [path.relative_to(TERRAFORM_DIR).as_posix() for path in CONFIG_DIRS]


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=_ids(TERRAFORM_DIR))
def test_every_variable_and_local_used_is_declared(directory):
    code = _code(directory)
    used_vars = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", code))
    used_locals = set(re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_]*)", code))
    assert used_vars <= set(_blocks(directory, "variable")), "undeclared variables"
    assert used_locals <= _locals(directory), "undefined locals"


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=_ids(TERRAFORM_DIR))
def test_module_calls_match_the_modules(directory):
    calls = _blocks(directory, "module")
    for call_name, call in calls.items():
        module_dir = (directory / _unquote(call["source"])).resolve()
        declared = _blocks(module_dir, "variable")
        required = {name for name, body in declared.items() if "default" not in body}
        given = {key for key in call if key not in {"source", "version", "providers"} and not key.startswith("__")}
        assert given <= set(declared), f"module {call_name} has no variables {given - set(declared)}"
        assert required <= given, f"module {call_name} needs {required - given}"

    outputs_used = re.findall(r"\bmodule\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)", _code(directory))
    for call_name, output in outputs_used:
        assert call_name in calls, f"no module {call_name}"
        module_dir = (directory / _unquote(calls[call_name]["source"])).resolve()
        assert output in _blocks(module_dir, "output"), f"module {call_name} has no output {output}"


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=_ids(TERRAFORM_DIR))
def test_templatefile_variables_match_the_placeholders(directory):
    code = _code(directory)
    calls = re.findall(r'templatefile\("\$\{path\.module\}/([^"]+)",\s*\{(.*?)\}\)', code, re.S)
    assert len(calls) == code.count("templatefile("), "a templatefile() call this test cannot read"
    for template, arguments in calls:
        placeholders = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", (directory / template).read_text()))
        given = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", arguments, re.M))
        assert placeholders == given, f"{template}: placeholders {placeholders}, given {given}"


PIPELINE_DIR = TERRAFORM_DIR / "modules" / "sfn-mackerel-pipeline"


def _block(directory: Path, section: str, kind: str, name: str) -> dict:
    """The body of `<section> "<kind>" "<name>"` (section: resource or data)."""
    for document in _parsed(directory):
        for block in document.get(section, []):
            for found_kind, bodies in block.items():
                if _unquote(found_kind) == kind and _unquote(name) in {_unquote(n) for n in bodies}:
                    return next(body for n, body in bodies.items() if _unquote(n) == name)
    raise AssertionError(f"no {section} {kind}.{name} in {directory}")


def _resource(directory: Path, kind: str, name: str) -> dict:
    return _block(directory, "resource", kind, name)


@pytest.mark.parametrize("alarm", ["dlq_not_empty", "oldest_result_age"])
def test_the_queue_alarms_keep_their_last_state_when_sqs_stops_reporting(alarm):
    # SQS stops publishing an untouched queue's metrics after about six hours,
    # even while it holds messages: missing data must not turn the alarm OK.
    body = _resource(PIPELINE_DIR, "aws_cloudwatch_metric_alarm", alarm)
    assert _unquote(body["treat_missing_data"]) == "ignore"


def test_the_consumer_roles_trust_has_no_condition_lambda_is_not_documented_to_send():
    for document in _parsed(PIPELINE_DIR):
        for block in document.get("data", []):
            for kind, bodies in block.items():
                for name, body in bodies.items():
                    if _unquote(kind) == "aws_iam_policy_document" and _unquote(name) == "consumer_assume":
                        for statement in body["statement"]:
                            assert "condition" not in statement, statement
                        return
    raise AssertionError("no data.aws_iam_policy_document.consumer_assume")


# --- EventBridge events into the pipeline (events.tf) ---------------------------------

CONSUMER_CONFIG = REPO_ROOT / "consumer" / "src" / "config.rs"


def _local(directory: Path, name: str):
    for document in _parsed(directory):
        for block in document.get("locals", []):
            if name in block:
                return block[name]
    raise AssertionError(f"no local.{name} in {directory}")


def _strings(values: list) -> list[str]:
    return [_unquote(value) for value in values]


def test_only_the_pipelines_event_rules_may_send_to_its_queues():
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
    document = _block(PIPELINE_DIR, "data", "aws_iam_policy_document", "events")
    (statement,) = document["statement"]
    assert _unquote(statement.get("effect", '"Allow"')) == "Allow"
    assert _strings(statement["actions"]) == ["sqs:SendMessage"]
    (principals,) = statement["principals"]
    assert _unquote(principals["type"]) == "Service"
    assert _strings(principals["identifiers"]) == ["events.amazonaws.com"]
    (condition,) = statement["condition"]
    assert (_unquote(condition["test"]), _unquote(condition["variable"])) == ("ArnEquals", "aws:SourceArn")
    assert re.fullmatch(r"\$\{\[for (\w+) in aws_cloudwatch_event_rule\.events : \1\.arn\]\}", condition["values"]), condition


def test_the_results_queue_and_the_dlq_both_get_the_event_policy():
    policy = _resource(PIPELINE_DIR, "aws_sqs_queue_policy", "events")
    document = _block(PIPELINE_DIR, "data", "aws_iam_policy_document", "events")
    assert policy["for_each"] == document["for_each"] == "${local.event_target_queues}"
    assert policy["policy"] == "${data.aws_iam_policy_document.events[each.key].json}"
    queues = _local(PIPELINE_DIR, "event_target_queues")
    for key in ("results", "dlq"):
        assert re.search(rf"\b{key} = \{{url = aws_sqs_queue\.{key}\.id, arn = aws_sqs_queue\.{key}\.arn\}}", queues), queues


def test_each_rules_target_is_the_results_queue_with_a_retry_policy_and_the_dlq():
    target = _resource(PIPELINE_DIR, "aws_cloudwatch_event_target", "events")
    assert target["for_each"] == "${aws_cloudwatch_event_rule.events}"
    assert target["arn"] == "${aws_sqs_queue.results.arn}"
    (retry,) = target["retry_policy"]
    assert retry["maximum_event_age_in_seconds"] == "${var.event_retry_max_age_seconds}"
    assert retry["maximum_retry_attempts"] == "${var.event_retry_attempts}"
    (dead_letter,) = target["dead_letter_config"]
    assert dead_letter["arn"] == "${aws_sqs_queue.dlq.arn}"


def test_only_the_workflow_rules_target_rebuilds_its_event_from_the_modules_two_files():
    target = _resource(PIPELINE_DIR, "aws_cloudwatch_event_target", "events")
    (dynamic,) = target["dynamic"]
    transformer = dynamic['"input_transformer"']
    assert transformer["for_each"] == '${each.key == "workflows" ? [local.workflow_event_input] : []}'
    (content,) = transformer["content"]
    assert content["input_paths"] == "${input_transformer.value.paths}"
    assert content["input_template"] == "${input_transformer.value.template}"
    # scripts/local_world.py reads the same two files for the tests' targets.
    code = (PIPELINE_DIR / "events.tf").read_text(encoding="utf-8")
    assert 'jsondecode(file("${path.module}/workflow-events.input-paths.json"))' in code
    assert 'trimspace(file("${path.module}/workflow-events.input-template.txt"))' in code


def test_an_event_rule_without_a_service_for_its_events_fails_the_plan():
    (lifecycle,) = _resource(PIPELINE_DIR, "aws_cloudwatch_event_rule", "events")["lifecycle"]
    (precondition,) = lifecycle["precondition"]
    assert precondition["condition"] == "${local.events_mapped}"
    assert "set event_service" in precondition["error_message"]


def test_the_function_sets_exactly_the_event_settings_the_consumer_reads():
    # The consumer's own source says what it reads (its tests below #[cfg(test)] aside).
    source = CONSUMER_CONFIG.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
    read = set(re.findall(r'"(EVENT_[A-Z0-9_]+)"', source))
    (environment,) = _resource(PIPELINE_DIR, "aws_lambda_function", "consumer")["environment"]
    written = set(re.findall(r"\b(EVENT_[A-Z0-9_]+)\s*=", environment["variables"]))
    assert read, f"{CONSUMER_CONFIG.relative_to(REPO_ROOT)} reads no EVENT_* variable any more"
    assert written == read, f"lambda.tf sets {sorted(written)}, the consumer reads {sorted(read)}"
