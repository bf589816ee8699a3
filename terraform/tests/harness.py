"""What the moto-backed Terraform tests share besides their fixtures (conftest.py):
the built binaries, the consumer run as the module deploys it, the Mackerel
stand-in's API and dump, and time parsing. One definition each, so the workflow
test and the events test drain and read Mackerel the same way.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
import local_world  # noqa: E402

MOTO_LAUNCHER = REPO_ROOT / "scripts" / "moto_server.py"
REGION = local_world.REGION
# The Mackerel service the stand-in knows and the tests post to.
SERVICE = "ORGANIZATION"
STANDIN_API_KEY = "workflow-test-key"
# The consumer stops once the queue stayed empty this long, and must be done within
# CONSUMER_SECONDS.
CONSUMER_IDLE_SECONDS = 3
CONSUMER_SECONDS = 60


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def moto_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/moto-api/config", timeout=1).close()
        return True
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    """Stops a process this test run started, by its id: SIGTERM, then SIGKILL after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def parse_rfc3339(text: str) -> datetime:
    # AWS prints `...43.229Z`, moto `...43.229123+00:00`: both are RFC 3339.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def minute_of(epoch_seconds: float) -> int:
    """The minute Mackerel stores a value under."""
    return int(epoch_seconds) // 60 * 60


def binary(name: str) -> Path:
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


def read_listening_line(process: subprocess.Popen, deadline: float) -> str:
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


def standin_request(base_url: str, path: str, payload=None):
    return local_world.mackerel_request(base_url, STANDIN_API_KEY, path, payload)


def stored_points(dump: dict, metric: str) -> dict[int, float]:
    """What the stand-in stores for `metric` of SERVICE: {minute: value}."""
    (service,) = [service for service in dump["services"] if service["name"] == SERVICE]
    series = [entry for entry in service["metrics"] if entry["name"] == metric]
    return {point["time"]: point["value"] for entry in series for point in entry["points"]}


def run_consumer(moto_url: str, standin_url: str, queue_url: str, dlq_url: str,
                 settings: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs `sfn-mackerel-consumer poll` over the queue until it idles, with only what the
    consumer needs in its environment (the stand-in's key and address, the DLQ, moto as
    AWS) plus `settings` (the consumer settings the module would set), so no QUEUE_URL,
    AWS_PROFILE, ... of the caller leaks in (but its clock does: under
    scripts/clock-check.sh moto's executions stamp the moved one)."""
    environment = local_world.with_the_callers_clock({
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MACKEREL_API_KEY": STANDIN_API_KEY,
        "MACKEREL_API_BASE": standin_url,
        "DLQ_URL": dlq_url,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        **(settings or {}),
    })
    try:
        return subprocess.run(
            [str(binary("sfn-mackerel-consumer")), "poll", "--queue-url", queue_url,
             "--exit-when-idle-secs", str(CONSUMER_IDLE_SECONDS), "--batching-window-ms", "500"],
            env=environment,
            capture_output=True,
            timeout=CONSUMER_SECONDS,
        )
    except subprocess.TimeoutExpired as error:  # subprocess.run has killed it
        pytest.fail(f"the consumer still ran after {CONSUMER_SECONDS}s: {(error.stderr or b'').decode()[-2000:]}")


def consumer_log(finished: subprocess.CompletedProcess) -> str:
    """The end of the consumer's stderr, for an assertion's message."""
    return finished.stderr.decode(errors="replace")[-4000:]


def alerts_of(alerts: list[dict], monitor_id: str) -> list[dict]:
    """The alerts (as /api/v0/alerts?withClosed=true lists them) of one monitor."""
    return [alert for alert in alerts if alert["monitorId"] == monitor_id]


def assert_one_open_critical_alert(alerts: list[dict], monitor_id: str) -> None:
    """The monitor alerted once, CRITICAL, and the alert is still open."""
    ours = alerts_of(alerts, monitor_id)
    assert len(ours) == 1, alerts
    assert ours[0]["status"] == "CRITICAL" and ours[0].get("closedAt") is None, ours[0]
