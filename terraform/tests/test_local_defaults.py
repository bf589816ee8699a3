"""The two local worlds take the Terraform module's settings, and cannot drift from it.

The Rust tests stand up their queues through testkit/src/local.rs, whose constants
spell out the module's defaults; the scripts and terraform/tests stand them up through
scripts/local_world.py, which computes them from the module's HCL. This test reads the
Rust constants (a regex over the source: no Rust build needed) and checks that they
equal what local_world computes, so changing the module (a longer function timeout,
another max_receive_count) fails here until the test kit follows.

It also checks that render_asl's default jobs are the example's, since the demo and
the workflow test take them from either place.

    .venv/bin/python -m pytest terraform/tests/test_local_defaults.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import local_world  # noqa: E402
from render_asl import DEFAULT_JOBS, DEFAULT_OVERLAP_RETRY  # noqa: E402  (local_world puts terraform/tests on the path)

TESTKIT_LOCAL = REPO_ROOT / "testkit" / "src" / "local.rs"
_RUST_CONSTANT = re.compile(r"^\s*pub\s+const\s+(MODULE_[A-Z0-9_]+)\s*:\s*u\d+\s*=\s*([0-9_]+)\s*;", re.M)

# Each test kit constant, and the local_world setting it must equal.
CONSTANT_FOR_SETTING = {
    "MODULE_VISIBILITY_TIMEOUT_SECONDS": "visibility_timeout_seconds",
    "MODULE_MAX_RECEIVE_COUNT": "max_receive_count",
    "MODULE_DLQ_RETENTION_SECONDS": "dlq_retention_seconds",
}


def _testkit_constants() -> dict[str, int]:
    return {
        name: int(value.replace("_", ""))
        for name, value in _RUST_CONSTANT.findall(TESTKIT_LOCAL.read_text(encoding="utf-8"))
    }


def test_the_testkit_declares_every_module_constant():
    constants = _testkit_constants()
    missing = sorted(set(CONSTANT_FOR_SETTING) - set(constants))
    assert not missing, (
        f"{TESTKIT_LOCAL.relative_to(REPO_ROOT)} no longer declares {missing} as "
        "`pub const NAME: u32 = N;`: restore them, or update this test's CONSTANT_FOR_SETTING"
    )


def test_the_testkit_constants_equal_the_module_defaults_in_the_hcl():
    computed = local_world.module_queue_settings()
    constants = _testkit_constants()
    drifted = {
        name: (constants.get(name), getattr(computed, setting))
        for name, setting in CONSTANT_FOR_SETTING.items()
        if constants.get(name) != getattr(computed, setting)
    }
    assert not drifted, (
        "testkit/src/local.rs and terraform/modules/sfn-mackerel-pipeline disagree "
        f"(constant: (test kit, module)): {drifted}. Set the constants to the module's values "
        "so the Rust tests run what a user deploys"
    )


def test_overrides_replace_only_what_they_name():
    settings = local_world.module_queue_settings(visibility_timeout=20, max_receive_count=3)
    assert settings == local_world.QueueSettings(
        visibility_timeout_seconds=20, max_receive_count=3, dlq_retention_seconds=1_209_600
    )


def test_render_asl_default_jobs_are_the_examples():
    assert list(DEFAULT_JOBS) == local_world.example_defaults()["glue_jobs"], (
        "terraform/tests/render_asl.py's DEFAULT_JOBS must equal glue_jobs' default in "
        "terraform/examples/glue-workflow/variables.tf"
    )


def test_render_asl_default_overlap_retry_is_the_examples():
    retry = local_world.example_defaults()["overlapping_run_retry"]
    assert DEFAULT_OVERLAP_RETRY == (retry["interval_seconds"], retry["max_attempts"]), (
        "terraform/tests/render_asl.py's DEFAULT_OVERLAP_RETRY must equal overlapping_run_retry's "
        "default in terraform/examples/glue-workflow/variables.tf"
    )
