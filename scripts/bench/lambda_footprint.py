#!/usr/bin/env python3
"""Cold start, peak memory and handling time of the consumer's Lambda binary.

Plays the Lambda service for a `bootstrap` binary on loopback: a minimal Lambda
Runtime API (the endpoints lambda_runtime calls), one SQS event per cold start.
Each iteration starts a fresh process, so every figure is a cold one:

- init: from just before the process is spawned to its first
  `GET /2018-06-01/runtime/invocation/next` (settings, AWS config, the API key
  from Secrets Manager, the HTTP client);
- handling: from handing out the event to receiving its `/response` (includes
  moving the event over loopback, posting to Mackerel and parking in the DLQ);
- peak RSS: VmHWM of the process after it answered, and VmHWM at its first
  `/next` (what init alone needed).

Started by scripts/bench/lambda-footprint.sh, which provides moto
(AWS_ENDPOINT_URL), the secret and the Mackerel stand-in; run it directly only
with those at hand. Each cold start gets a fresh DLQ in moto.
Prints one line per iteration and the medians; `--json` writes them too.
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

RUNTIME_PREFIX = "/2018-06-01/runtime"
JOBS = ["make_rawdata", "make_alarm", "make_order", "load_users", "score"]


def rfc3339(epoch_seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.229Z", time.gmtime(epoch_seconds))


def sqs_event(records, services, malformed_percent, now):
    """An SQS event shaped like the one Lambda delivers: a mix of single-value
    and two-value messages over the last hour, some malformed."""
    malformed_every = round(100 / malformed_percent) if malformed_percent > 0 else 0
    items = []
    for i in range(records):
        service = f"team-{i % services}"
        job = f"{JOBS[i % len(JOBS)]}_{i % 8}"
        at = now - (i * 7) % 3600
        if malformed_every and i % malformed_every == malformed_every - 1:
            body = '{"service": "broken'
        elif i % 2 == 0:
            body = json.dumps({
                "service": service,
                "time": rfc3339(at),
                "metrics": [
                    {"name": f"prd.glue.job.{job}.failed", "value": int(i % 17 == 0)},
                    {"name": f"prd.glue.job.{job}.seconds", "value": 30 + i % 300},
                ],
            })
        else:
            body = json.dumps({"service": service, "name": f"prd.glue.job.{job}.failed",
                               "value": 0, "time": at})
        items.append({
            "messageId": str(uuid.UUID(int=i)),
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a" * 4,
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": str((now - 5) * 1000),
                "SenderId": "AROAEXAMPLE:states",
                "ApproximateFirstReceiveTimestamp": str(now * 1000),
            },
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:results",
            "awsRegion": "us-east-1",
        })
    return json.dumps({"Records": items}).encode()


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    figures = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(rest.split()[0])
    return figures


class Invocation:
    """What one cold start did, filled in by the Runtime API handlers."""

    def __init__(self, event, pid_box):
        self.event = event
        self.request_id = str(uuid.uuid4())
        self.pid_box = pid_box
        self.first_next_at = None
        self.init_status = None
        self.event_sent_at = None
        self.response_at = None
        self.response = None
        self.error = None
        self.spawned = threading.Event()
        self.done = threading.Event()
        self.release = threading.Event()


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeApiHandler)
        self.invocation = None

    def handle_error(self, request, client_address):
        # A stopped binary resets its kept-alive connections: expected, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it every answer after the first waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def _answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        invocation = self.server.invocation
        if self.path != f"{RUNTIME_PREFIX}/invocation/next" or invocation is None:
            self._answer(404)
            return
        if invocation.first_next_at is None:
            invocation.first_next_at = time.monotonic()
            invocation.spawned.wait(10)
            invocation.init_status = proc_status(invocation.pid_box[0])
            deadline_ms = int(time.time() * 1000) + 60_000
            invocation.event_sent_at = time.monotonic()
            self._answer(200, invocation.event, [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                ("Lambda-Runtime-Invoked-Function-Arn",
                 "arn:aws:lambda:us-east-1:123456789012:function:sfn-mackerel-consumer"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
            ])
            return
        # The next invocation never comes: hold the poll until the process is stopped.
        invocation.release.wait(120)
        try:
            self._answer(410)
        except OSError:
            pass

    def do_POST(self):
        invocation = self.server.invocation
        body = self._body()
        if invocation is None:
            self._answer(404)
            return
        if self.path == f"{RUNTIME_PREFIX}/invocation/{invocation.request_id}/response":
            invocation.response_at = time.monotonic()
            invocation.response = body
        elif self.path.endswith("/error"):
            invocation.response_at = time.monotonic()
            invocation.error = body.decode(errors="replace") or self.path
        else:
            self._answer(404)
            return
        self._answer(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        invocation.done.set()


class DeadLetterQueues:
    """A fresh, empty DLQ for every cold start (in the SQS at AWS_ENDPOINT_URL),
    so each iteration parks into the same kind of queue and shows that it
    parked exactly the malformed messages."""

    def __init__(self, env):
        import boto3  # the project's venv has it (moto depends on it)

        self.sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"],
                                region_name=env.get("AWS_REGION", "us-east-1"))

    def create(self):
        name = f"footprint-dlq-{uuid.uuid4().hex[:12]}"
        return self.sqs.create_queue(QueueName=name)["QueueUrl"]

    def count(self, url):
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def run_once(api, binary, env, event, log, timeout):
    pid_box = [None]
    invocation = Invocation(event, pid_box)
    api.invocation = invocation
    started = time.monotonic()
    process = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
    pid_box[0] = process.pid
    invocation.spawned.set()
    try:
        if not invocation.done.wait(timeout):
            raise RuntimeError(f"no /response or /error within {timeout} s; see the binary's log")
        if invocation.error is not None:
            raise RuntimeError(f"the invocation failed: {invocation.error}")
        after = proc_status(process.pid)
    finally:
        invocation.release.set()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    response = json.loads(invocation.response or b"{}")
    return {
        "init_ms": (invocation.first_next_at - started) * 1e3,
        "init_hwm_kib": invocation.init_status["VmHWM"],
        "handling_ms": (invocation.response_at - invocation.event_sent_at) * 1e3,
        "peak_rss_kib": after["VmHWM"],
        "rss_after_kib": after["VmRSS"],
        "batch_item_failures": len(response.get("batchItemFailures") or []),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--malformed-percent", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds to wait for one invocation's answer")
    parser.add_argument("--log", default=os.devnull, help="where the binary's output goes")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    event = sqs_event(args.records, args.services, args.malformed_percent, int(time.time()))
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "sfn-mackerel-consumer",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/sfn-mackerel-consumer",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
    })

    print(f"event: {args.records} records, {len(event)} bytes, {args.services} services, "
          f"{args.malformed_percent:g}% malformed", flush=True)
    queues = DeadLetterQueues(env)
    runs = []
    with open(args.log, "ab") as log:
        for iteration in range(1, args.iterations + 1):
            env["DLQ_URL"] = queues.create()
            run = run_once(api, args.binary, env, event, log, args.timeout)
            run["parked"] = queues.count(env["DLQ_URL"])
            runs.append(run)
            print(f"  cold start {iteration}: init {run['init_ms']:6.1f} ms "
                  f"(VmHWM {run['init_hwm_kib'] / 1024:5.1f} MiB), "
                  f"handling {run['handling_ms']:7.1f} ms, "
                  f"peak RSS {run['peak_rss_kib'] / 1024:5.1f} MiB, "
                  f"parked {run['parked']}, "
                  f"batch item failures {run['batch_item_failures']}", flush=True)
    api.shutdown()

    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(f"median of {len(runs)}: init {medians['init_ms']:.1f} ms, "
          f"handling {medians['handling_ms']:.1f} ms, "
          f"peak RSS {medians['peak_rss_kib'] / 1024:.1f} MiB "
          f"(after init {medians['init_hwm_kib'] / 1024:.1f} MiB)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"event_bytes": len(event), "runs": runs, "medians": medians}, out, indent=2)
    if any(run["batch_item_failures"] for run in runs):
        print("some messages were reported as batch item failures: see the binary's log",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
