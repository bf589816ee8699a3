#!/usr/bin/env python3
"""The demo's AWS and Mackerel steps, run by scripts/demo.sh with the project venv
(moto brings boto3). Everything talks to loopback: moto for SQS and Secrets
Manager, the Mackerel stand-in for Mackerel.

  demo_steps.py setup    create the queues, the secret and the Mackerel monitors
  demo_steps.py send     send the results of four workflow executions and one malformed message
  demo_steps.py report   print what reached Mackerel, the alerts and the DLQ

State between steps travels in environment variables set by demo.sh.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from datetime import datetime, timezone

import boto3

SERVICE = "ORGANIZATION"
PREFIX = "prd.glue.job"
JOBS = ["make_rawdata", "make_alarm", "make_order"]
# The shipped monitors average the latest 2 points (terraform failure_duration).
FAILURE_DURATION = 2


def aws(name: str):
    return boto3.client(
        name,
        endpoint_url=os.environ["MOTO_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def mackerel(method: str, path: str, body=None):
    request = urllib.request.Request(
        os.environ["MACKEREL_API_BASE"] + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Api-Key": os.environ["DEMO_API_KEY"], "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def setup() -> None:
    sqs = aws("sqs")
    dlq_url = sqs.create_queue(QueueName="job-results-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="job-results",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    aws("secretsmanager").create_secret(
        Name="sfn-mackerel/api-key",
        SecretString=json.dumps({"MACKEREL_API_KEY": os.environ["DEMO_API_KEY"]}),
    )
    for job in JOBS:
        mackerel("POST", "/api/v0/monitors", {
            "type": "service", "name": f"{PREFIX}.{job} failed", "service": SERVICE,
            "metric": f"{PREFIX}.{job}.failed", "operator": ">", "warning": None, "critical": 0,
            "duration": FAILURE_DURATION, "maxCheckAttempts": 1,
        })
    print(f"QUEUE_URL={queue_url}")
    print(f"DLQ_URL={dlq_url}")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send() -> None:
    sqs = aws("sqs")
    queue_url = os.environ["QUEUE_URL"]
    now = time.time()
    bodies = []
    # Four executions, 10 minutes apart; in the latest one make_alarm fails.
    for execution, minutes_ago in enumerate([35, 25, 15, 5], start=1):
        entered = rfc3339(now - minutes_ago * 60)
        for job in JOBS:
            if execution == 4 and job == "make_alarm":
                body = {"service": SERVICE, "time": entered,
                        "metrics": [{"name": f"{PREFIX}.{job}.failed", "value": 1}],
                        "error": {"Error": "States.TaskFailed"},
                        "execution": f"demo-execution-{execution}"}
            else:
                body = {"service": SERVICE, "time": entered,
                        "metrics": [{"name": f"{PREFIX}.{job}.failed", "value": 0},
                                    {"name": f"{PREFIX}.{job}.seconds", "value": 40 + 17 * JOBS.index(job) + execution}],
                        "execution": f"demo-execution-{execution}"}
            bodies.append(json.dumps(body))
    bodies.append('{"service": "ORGANIZATION", "name": "prd.glue.job.make_order.failed", "value": ')
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])]
        result = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if result.get("Failed"):
            sys.exit(f"sending failed: {result['Failed']}")
    print(f"sent {len(bodies)} messages: 4 executions x {len(JOBS)} jobs (make_alarm fails in the latest) and 1 malformed")


def report() -> None:
    monitors = {m["id"]: m for m in mackerel("GET", "/api/v0/monitors")["monitors"]}
    alerts = {a["monitorId"]: a for a in mackerel("GET", "/api/v0/alerts")["alerts"]}
    now = int(time.time())
    print()
    print(f"What reached Mackerel (service {SERVICE}):")
    print(f"  {'job':<14} {'latest failed':>13} {'latest seconds':>15}   alert")
    for job in JOBS:
        def latest(metric: str):
            try:
                points = mackerel("GET", f"/api/v0/services/{SERVICE}/metrics?name={PREFIX}.{job}.{metric}&from={now - 7200}&to={now + 60}")["metrics"]
            except urllib.error.HTTPError:
                return "-"
            return f"{points[-1]['value']:g} ({len(points)} pts)" if points else "-"
        monitor_id = next((i for i, m in monitors.items() if m["metric"] == f"{PREFIX}.{job}.failed"), None)
        alert = alerts.get(monitor_id)
        state = f"{alert['status']} (value {alert['value']:g})" if alert else "OK"
        print(f"  {job:<14} {latest('failed'):>13} {latest('seconds'):>15}   {state}")
    sqs = aws("sqs")
    print()
    print("What sits in the DLQ:")
    messages = sqs.receive_message(QueueUrl=os.environ["DLQ_URL"], MaxNumberOfMessages=10,
                                   MessageAttributeNames=["All"], VisibilityTimeout=0).get("Messages", [])
    if not messages:
        print("  (nothing)")
    for message in messages:
        attributes = message.get("MessageAttributes", {})
        reason = attributes.get("Reason", {}).get("StringValue", "retries exhausted")
        detail = attributes.get("ReasonDetail", {}).get("StringValue", "")
        print(f"  {reason}: {detail}")
        print(f"    body: {message['Body'][:100]}")
    depth = sqs.get_queue_attributes(QueueUrl=os.environ["QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"])
    print()
    print(f"Left in the source queue: {depth['Attributes']['ApproximateNumberOfMessages']}")


if __name__ == "__main__":
    steps = {"setup": setup, "send": send, "report": report}
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(steps)}")
    steps[sys.argv[1]]()
