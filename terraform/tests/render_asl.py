#!/usr/bin/env python3
"""Renders the example's state machine definition the way its Terraform does.

terraform/examples/glue-workflow/main.tf builds the definition in two steps, and
this file repeats them so the definition can be validated and executed without
Terraform. Its variable `results_via` chooses the variant:

- "sendMessage" (the default): each branch sends its job's result to the queue.
  1. each job's branch: `templatefile("job-branch.asl.json.tftpl", {job_name,
     queue_url, service, metric_prefix, partition, overlap_retry_interval_seconds,
     overlap_retry_max_attempts})`, parsed as JSON;
  2. the workflow: `templatefile("workflow.asl.json.tftpl", {branches =
     jsonencode(<the branches>)})`.
- "events": the workflow sends nothing; Glue's and Step Functions' own events
  report (the pipeline module's events.tf). The same two steps with
  `job-branch-events.asl.json.tftpl` ({job_name, partition,
  overlap_retry_interval_seconds, overlap_retry_max_attempts}) and
  `workflow-events.asl.json.tftpl` ({branches}).

The templates use only `${name}` interpolation, the one part of Terraform's
template language this renderer implements; it refuses directives (`%{`) and
escapes (`$${`) rather than render them differently from Terraform.

    .venv/bin/python terraform/tests/render_asl.py [--via events] --queue-url URL --out FILE
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "glue-workflow"

# results_via -> (workflow template, branch template), as main.tf chooses them.
VIA_SEND_MESSAGE = "sendMessage"
VIA_EVENTS = "events"
TEMPLATES = {
    VIA_SEND_MESSAGE: (EXAMPLE_DIR / "workflow.asl.json.tftpl", EXAMPLE_DIR / "job-branch.asl.json.tftpl"),
    VIA_EVENTS: (EXAMPLE_DIR / "workflow-events.asl.json.tftpl", EXAMPLE_DIR / "job-branch-events.asl.json.tftpl"),
}

# The example's defaults (variables.tf; test_local_defaults.py holds them equal);
# tests pass their own values.
DEFAULT_JOBS = ("make_rawdata", "make_alarm", "make_order")
# overlapping_run_retry: (interval_seconds, max_attempts).
DEFAULT_OVERLAP_RETRY = (60, 3)

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_template(path: Path, values: dict[str, str]) -> str:
    """Substitutes `${name}` like Terraform's templatefile(); a missing name is an error."""
    text = path.read_text(encoding="utf-8")
    for unsupported in ("%{", "$${"):
        if unsupported in text:
            raise ValueError(
                f"{path.name} uses `{unsupported}`, which this renderer does not implement: "
                "keep the templates to plain ${name} interpolation"
            )

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"{path.name} references ${{{name}}}, which was not given")
        return values[name]

    return _INTERPOLATION.sub(substitute, text)


def render_workflow(
    *,
    via: str = VIA_SEND_MESSAGE,
    queue_url: str | None = None,
    service: str | None = None,
    metric_prefix: str | None = None,
    jobs: tuple[str, ...] = DEFAULT_JOBS,
    partition: str = "aws",
    overlap_retry: tuple[int, int] = DEFAULT_OVERLAP_RETRY,
) -> str:
    """Returns the state machine definition (ASL JSON text) for the given jobs, in the
    variant `via` (the example's results_via). The sendMessage variant needs the
    queue, the service and the metric prefix its messages carry; the events variant
    sends nothing and takes none of them."""
    if via not in TEMPLATES:
        raise ValueError(f"via must be one of {sorted(TEMPLATES)} (the example's results_via), got {via!r}")
    workflow_template, branch_template = TEMPLATES[via]
    interval_seconds, max_attempts = overlap_retry
    values = {
        "partition": partition,
        "overlap_retry_interval_seconds": str(interval_seconds),
        "overlap_retry_max_attempts": str(max_attempts),
    }
    if via == VIA_SEND_MESSAGE:
        given = {"queue_url": queue_url, "service": service, "metric_prefix": metric_prefix}
        missing = sorted(name for name, value in given.items() if value is None)
        if missing:
            raise ValueError(f"the sendMessage variant needs {', '.join(missing)}")
        values |= given
    branches = [json.loads(render_template(branch_template, {"job_name": job, **values})) for job in jobs]
    definition = render_template(workflow_template, {"branches": json.dumps(branches)})
    json.loads(definition)  # the rendered result must be JSON, as Step Functions requires
    return definition


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--queue-url", default="https://sqs.us-east-1.amazonaws.com/123456789012/sfn-mackerel"
    )
    parser.add_argument("--service", default="ORGANIZATION")
    parser.add_argument("--metric-prefix", default="prd.glue.job")
    parser.add_argument("--jobs", default=",".join(DEFAULT_JOBS), help="comma-separated")
    parser.add_argument(
        "--via", choices=sorted(TEMPLATES), default=VIA_SEND_MESSAGE, help="the example's results_via"
    )
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    definition = render_workflow(
        via=args.via,
        queue_url=args.queue_url,
        service=args.service,
        metric_prefix=args.metric_prefix,
        jobs=tuple(job for job in args.jobs.split(",") if job),
    )
    if args.out:
        args.out.write_text(definition, encoding="utf-8")
    else:
        sys.stdout.write(definition)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
