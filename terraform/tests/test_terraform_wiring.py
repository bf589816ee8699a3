"""What `terraform validate` would catch in the wiring, checked without a terraform binary.

For every configuration directory under terraform/ (each module, the example):
- every `var.X` and `local.X` it uses is declared in that directory;
- every module call passes only variables the module declares, and all the
  variables it requires (those without a default);
- every `module.M.O` it uses is an output of module M;
- the variables given to templatefile() are the placeholders its template uses.

    .venv/bin/python -m pytest terraform/tests
"""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

TERRAFORM_DIR = Path(__file__).resolve().parent.parent
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


def _resource(directory: Path, kind: str, name: str) -> dict:
    for document in _parsed(directory):
        for block in document.get("resource", []):
            for found_kind, bodies in block.items():
                if _unquote(found_kind) == kind and _unquote(name) in {_unquote(n) for n in bodies}:
                    return next(body for n, body in bodies.items() if _unquote(n) == name)
    raise AssertionError(f"no resource {kind}.{name} in {directory}")


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
