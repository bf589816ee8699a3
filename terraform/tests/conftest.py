"""The servers the moto-backed Terraform tests share, defined once.

test_glue_workflow_in_moto.py and test_events_in_moto.py each run the example
workflow in moto's Step Functions and drain what reaches the queue into the
Mackerel stand-in with the consumer binary. The fixtures here give each test
module its own servers (module scope: a module's assertions count alerts and
points, so no other module may write into its stand-in); the plain helpers the
tests call are in harness.py.

- `moto_url`: scripts/moto_server.py (moto with the project's patches), the one at
  MOTO_URL when set (it must be that launcher), otherwise one started here on a
  free loopback port and stopped by its process id;
- `executing_state_machines`: moto's Step Functions execution on for the module;
- `mackerel_standin`: the stand-in binary on a free loopback port, knowing
  harness.SERVICE, stopped by its process id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

import harness
from harness import local_world

SERVER_START_SECONDS = 30
STANDIN_START_SECONDS = 15


@pytest.fixture(scope="module")
def moto_url():
    if os.environ.get("MOTO_URL"):
        yield os.environ["MOTO_URL"].rstrip("/")
        return
    port = harness.free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, str(harness.MOTO_LAUNCHER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not harness.moto_answers(url):
            if server.poll() is not None:
                pytest.fail(f"scripts/moto_server.py exited: {server.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"scripts/moto_server.py did not answer on {url} within {SERVER_START_SECONDS}s")
            time.sleep(0.2)
        yield url
    finally:
        harness.stop(server)


@pytest.fixture(scope="module")
def executing_state_machines(moto_url):
    """Turns on moto's Step Functions execution for this module, then restores the setting."""
    with local_world.state_machines_executing(moto_url):
        yield moto_url


@pytest.fixture(scope="module")
def mackerel_standin():
    """The Mackerel stand-in on a free loopback port, knowing harness.SERVICE; its base URL."""
    binary = harness.binary("mackerel-standin")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--api-key", harness.STANDIN_API_KEY,
             "--service", harness.SERVICE],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            base_url = harness.read_listening_line(process, time.monotonic() + STANDIN_START_SECONDS)
            if not base_url:
                log.seek(0)
                pytest.fail(
                    f"{binary.name} printed no listening address within {STANDIN_START_SECONDS}s: "
                    f"{log.read().decode(errors='replace')[-2000:]}"
                )
            yield base_url
        finally:
            harness.stop(process)
            process.stdout.close()
