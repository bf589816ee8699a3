#!/usr/bin/env python3
"""moto_server with the patches that let moto 5.2.5 run this project's workflow and
its load tests.

Run it exactly like `moto_server` (same arguments, same behaviour), e.g.

    .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p 5000

Step Functions execution itself stays opt-in, as in stock moto: a test turns it on
with `POST /moto-api/config {"stepfunctions": {"execute_state_machine": true}}`.
What the patches change, and only when a workflow is executed:

1. `glue:startJobRun.sync` no longer dies with `States.Runtime` ("'NoneType' object
   has no attribute 'interrupt_all'"): moto's callback task calls `interrupt_all()`
   on a wait-for-task-token endpoint that Glue tasks never create.
2. A Glue job run can end in a state other than SUCCEEDED: a job (DefaultArguments)
   or a run (Arguments) carrying `--moto-final-state FAILED` (or TIMEOUT, ERROR,
   STOPPED) ends that way, with an ErrorMessage as AWS reports one; `RUNNING`
   never ends, so a later StartJobRun of the job meets moto's own
   ConcurrentRunsExceededException (overlapping executions). Runs without the
   argument succeed, as in stock moto.

3. SQS stays linear in the number of messages in a queue (see make_sqs_linear):
   stock moto rescans every message for every attribute on each SendMessage and
   ReceiveMessage, which made a queue of thousands of messages take seconds per
   call. Only the speed changes.

4. SQS calls run one at a time (see make_sqs_calls_atomic): moto's threaded
   server could hand out a message twice or drop one under concurrent calls.

5. Under Debian's libfaketime (scripts/clock-check.sh moves the clock a year
   ahead), a long poll waits by sleeping in short steps (see
   poll_by_sleeping_under_a_moved_clock): libfaketime 0.9.10 stretches CPython's
   timed lock waits by the whole offset, so every ReceiveMessage with
   WaitTimeSeconds hung until the client gave up. Without FAKETIME nothing changes.

All patch moto's internals, so moto is pinned (scripts/requirements.txt) and each
patch first asserts that the code it replaces is still there: a moto upgrade fails
here, loudly, rather than silently un-patching the tests.
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap

PINNED_MOTO_VERSION = "5.2.5"

# Glue argument a test sets on a job (or a run) to choose how the run ends.
FINAL_STATE_ARGUMENT = "--moto-final-state"
_ABNORMAL_FINAL_STATES = {"FAILED", "TIMEOUT", "ERROR"}
# A run that stays RUNNING, for a workflow that overlaps a run still going.
NEVER_ENDS = "RUNNING"
_ALLOWED_FINAL_STATES = {"SUCCEEDED", "STOPPED", NEVER_ENDS, *_ABNORMAL_FINAL_STATES}
_STOCK_JOB_RUN_TRANSITIONS = [("STARTING", "RUNNING"), ("RUNNING", "SUCCEEDED")]


class MotoPatchOutdated(RuntimeError):
    """The moto code a patch rewrites has changed: re-check the patch before upgrading moto."""


def require_pinned_moto() -> None:
    import moto  # here, not at the top: scripts/local_world.py imports this file for its constants

    if moto.__version__ != PINNED_MOTO_VERSION:
        raise MotoPatchOutdated(
            f"scripts/moto_server.py patches moto {PINNED_MOTO_VERSION} but moto "
            f"{moto.__version__} is installed: reinstall with scripts/requirements.txt "
            "(rm -rf .venv and rerun) or port the patches to the new version"
        )


def guard_missing_callback_endpoint() -> None:
    """Patch 1: guard `callback_endpoint.interrupt_all()` against a None endpoint.

    The method is long and the None is a local variable, so the patch rewrites that
    one line of its source (`if callback_endpoint is not None:` in front) and
    recompiles the method in its own module, rather than copying the method here.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as module,
    )

    cls = module.StateTaskServiceCallback
    source = textwrap.dedent(inspect.getsource(cls._eval_integration_pattern))
    pattern = re.compile(r"^(?P<indent>[ ]+)callback_endpoint\.interrupt_all\(\)$", re.M)
    matches = pattern.findall(source)
    if len(matches) != 1:
        raise MotoPatchOutdated(
            "expected exactly one `callback_endpoint.interrupt_all()` in "
            f"StateTaskServiceCallback._eval_integration_pattern, found {len(matches)}"
        )
    patched = pattern.sub(
        lambda m: (
            f"{m['indent']}if callback_endpoint is not None:\n"
            f"{m['indent']}    callback_endpoint.interrupt_all()"
        ),
        source,
    )
    namespace: dict = {}
    exec(compile(patched, module.__file__, "exec"), module.__dict__, namespace)
    cls._eval_integration_pattern = namespace["_eval_integration_pattern"]


def let_glue_job_runs_fail() -> None:
    """Patch 2: end a Glue job run in the state named by `--moto-final-state`."""
    from moto.glue import models as glue

    stock_source = inspect.getsource(glue.FakeJobRun.__init__)
    if 'transitions=[("STARTING", "RUNNING"), ("RUNNING", "SUCCEEDED")]' not in stock_source:
        raise MotoPatchOutdated("FakeJobRun.__init__ no longer sets the stock transitions")
    if '"ExecutionTime"' not in inspect.getsource(glue.FakeJobRun.as_dict):
        raise MotoPatchOutdated("FakeJobRun.as_dict no longer reports ExecutionTime")

    stock_init = glue.FakeJobRun.__init__
    stock_as_dict = glue.FakeJobRun.as_dict

    def __init__(self, *args, **kwargs):  # noqa: N807 - replaces a dunder
        stock_init(self, *args, **kwargs)
        if self._transitions != _STOCK_JOB_RUN_TRANSITIONS:
            raise MotoPatchOutdated(f"FakeJobRun transitions are {self._transitions!r}")
        final_state = (self.arguments or {}).get(FINAL_STATE_ARGUMENT)
        if final_state is None:
            return
        if final_state not in _ALLOWED_FINAL_STATES:
            raise ValueError(
                f"{FINAL_STATE_ARGUMENT} must be one of {sorted(_ALLOWED_FINAL_STATES)}, "
                f"got {final_state!r}"
            )
        if final_state == NEVER_ENDS:
            self._transitions = [("STARTING", "RUNNING")]
        else:
            self._transitions = [("STARTING", "RUNNING"), ("RUNNING", final_state)]

    def as_dict(self):
        job_run = stock_as_dict(self)
        if job_run.get("JobRunState") in _ABNORMAL_FINAL_STATES:
            # AWS reports why a run failed; the workflow's Catch sees it in the Cause.
            job_run["ErrorMessage"] = (
                f"run ended {job_run['JobRunState']} because the job carries "
                f"{FINAL_STATE_ARGUMENT} (moto test double)"
            )
        return job_run

    glue.FakeJobRun.__init__ = __init__
    glue.FakeJobRun.as_dict = as_dict


def make_sqs_linear() -> None:
    """Patch 3: keep moto's SQS linear in the number of messages; no behaviour changes.

    Stock moto recomputes every queue attribute, each an O(messages) scan, on every
    SendMessage (for ContentBasedDeduplication, which only FIFO queues have) and up
    to three times per message in ReceiveMessage (for the retention period), and it
    reads the clock through datetime arithmetic for every message it looks at. A
    queue of a few thousand messages then takes seconds per call, which made the
    load tests and the fault run measure moto instead of this project. The patch
    reads those single attributes directly, computes a queue's attributes once per
    GetQueueAttributes call, and reads the clock with time.time().
    """
    import time

    from moto.sqs import models as sqs

    expected_calls = {
        sqs.SQSBackend.send_message: 1,
        sqs.SQSBackend._validate_message: 2,
    }
    attribute_read = 'queue.attributes.get("ContentBasedDeduplication")'
    for method, count in expected_calls.items():
        source = textwrap.dedent(inspect.getsource(method))
        if source.count(attribute_read) != count:
            raise MotoPatchOutdated(
                f"expected {count} `{attribute_read}` in SQSBackend.{method.__name__}"
            )
        patched = source.replace(attribute_read, "_content_based_deduplication_attribute(queue)")
        namespace: dict = {}
        exec(compile(patched, sqs.__file__, "exec"), sqs.__dict__, namespace)
        setattr(sqs.SQSBackend, method.__name__, namespace[method.__name__])

    def _content_based_deduplication_attribute(queue):
        # Queue.attributes lists it (as "true"/"false") for FIFO queues only.
        if not queue.fifo_queue:
            return None
        return str(queue.content_based_deduplication).lower()

    sqs._content_based_deduplication_attribute = _content_based_deduplication_attribute

    retention_source = inspect.getsource(sqs.SQSBackend.is_message_valid_based_on_retention_period)
    if '["MessageRetentionPeriod"]' not in retention_source or "unix_time()" not in retention_source:
        raise MotoPatchOutdated("is_message_valid_based_on_retention_period changed")

    def is_message_valid_based_on_retention_period(self, queue_name, message):
        queue = self.get_queue(queue_name)
        retain_until = float(queue.message_retention_period) + message.sent_timestamp / 1000
        return retain_until > time.time()

    sqs.SQSBackend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )

    attributes_source = inspect.getsource(sqs.SQSBackend.get_queue_attributes)
    if "if queue.attributes.get(name) is not None:" not in attributes_source:
        raise MotoPatchOutdated("SQSBackend.get_queue_attributes changed")
    stock_get_queue_attributes = sqs.SQSBackend.get_queue_attributes

    def get_queue_attributes(self, queue_name, attribute_names):
        if not attribute_names or "All" in attribute_names:
            return stock_get_queue_attributes(self, queue_name, attribute_names)
        # The same validation as the stock method, then one computation of the attributes.
        valid = (
            ["All"]
            + sqs.Queue.BASE_ATTRIBUTES
            + sqs.Queue.FIFO_ATTRIBUTES
            + sqs.Queue.KMS_ATTRIBUTES
        )
        invalid = next((name for name in attribute_names if name not in valid), None)
        if invalid or invalid == "":
            raise sqs.InvalidAttributeName(invalid)
        everything = self.get_queue(queue_name).attributes
        return {
            name: everything[name]
            for name in attribute_names
            if name in everything and everything[name] is not None
        }

    sqs.SQSBackend.get_queue_attributes = get_queue_attributes

    stock_unix_time = sqs.unix_time

    def unix_time(dt=None):
        return time.time() if dt is None else stock_unix_time(dt)

    def unix_time_millis(dt=None):
        return unix_time(dt) * 1000.0

    sqs.unix_time = unix_time
    sqs.unix_time_millis = unix_time_millis


def make_sqs_calls_atomic() -> None:
    """Patch 4: one SQS API call at a time, as real SQS behaves to its clients.

    moto's server is threaded, and its SQS model is not thread-safe: two
    concurrent ReceiveMessage calls can hand out the same message, and
    DeleteMessage rebuilds the queue's list from a snapshot while other calls
    move messages to the dead-letter queue in place, which can drop a message
    altogether. The fault run (two pollers, retries, redrive policy) lost
    messages that way. Every SQS call now runs under one lock, released only
    while a long poll waits for messages, so long polling still lets others in.
    """
    import threading

    from moto.core.responses import BaseResponse
    from moto.sqs import models as sqs
    from moto.sqs.responses import SQSResponse

    if "call_action" in SQSResponse.__dict__:
        raise MotoPatchOutdated("SQSResponse now defines its own call_action")
    if "queue.wait_for_messages(1)" not in inspect.getsource(sqs.SQSBackend.receive_message):
        raise MotoPatchOutdated("receive_message no longer waits with queue.wait_for_messages(1)")

    sqs_lock = threading.Lock()
    stock_call_action = BaseResponse.call_action
    stock_wait_for_messages = sqs.Queue.wait_for_messages

    def call_action(self):
        with sqs_lock:
            return stock_call_action(self)

    def wait_for_messages(self, timeout):
        sqs_lock.release()
        try:
            stock_wait_for_messages(self, timeout)
        finally:
            sqs_lock.acquire()

    SQSResponse.call_action = call_action
    sqs.Queue.wait_for_messages = wait_for_messages


def poll_by_sleeping_under_a_moved_clock() -> None:
    """Patch 5: under libfaketime, wait for messages with short sleeps instead of a
    timed Condition wait.

    libfaketime 0.9.10 shifts the deadline of CPython's timed lock waits (on
    CLOCK_MONOTONIC) by the whole offset, so `Condition.wait_for(..., timeout=1)`
    waits a year; `time.sleep` is unaffected. Only active when `FAKETIME` is set.
    """
    import os
    import time

    from moto.sqs import models as sqs

    # Checked on every run, so a moto upgrade that changes the wait fails here loudly.
    if "self._messages_lock.wait_for(" not in inspect.getsource(sqs.Queue.wait_for_messages):
        raise MotoPatchOutdated("Queue.wait_for_messages no longer waits on _messages_lock")
    if "FAKETIME" not in os.environ:
        return

    step_seconds = 0.05

    def wait_for_messages(self, timeout):
        until = time.monotonic() + timeout
        while not self.messages and time.monotonic() < until:
            time.sleep(step_seconds)

    sqs.Queue.wait_for_messages = wait_for_messages


def apply_patches() -> None:
    require_pinned_moto()
    guard_missing_callback_endpoint()
    let_glue_job_runs_fail()
    make_sqs_linear()
    poll_by_sleeping_under_a_moved_clock()  # before patch 4, which wraps the wait
    make_sqs_calls_atomic()


def main(argv: list[str] | None = None) -> None:
    apply_patches()
    from moto.server import main as moto_server_main

    moto_server_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
