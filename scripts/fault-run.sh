#!/usr/bin/env bash
# The fault run: FAULT_RUN_MESSAGES (default 20,000) job results through moto, the
# consumer's queue runner and the Mackerel stand-in while things go wrong:
#   - 2% malformed messages, 1% with values older than 24 h;
#   - the stand-in answers 10% of requests with 500, 5% with 429 (half of them
#     with Retry-After), lets 2% hang past the consumer's timeout, answers 2%
#     with a proxy's 200 page (nothing stored) and cuts 2% off after storing them;
#   - the runner is killed with SIGKILL twice mid-run and restarted;
#   - the consumer tries each request only twice, so some batches exhaust their
#     receives and the queue's redrive policy parks them (reason retries_exhausted).
# Then `dlq redrive --reason retries_exhausted` and drain again, until nothing is
# left to redrive. `verify` must then find every valid value in the stand-in with
# its original time and value, every malformed or too-old message in the DLQ with
# its reason, and nothing else anywhere. Prints the tally; exits non-zero if not.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
trap stop_started EXIT
trap 'exit 130' INT TERM

messages="${FAULT_RUN_MESSAGES:-20000}"
# FAULT_RUN_CALM=1 runs the same drain without faults or kills: the control experiment.
calm="${FAULT_RUN_CALM:-0}"
work="$REPO_ROOT/.ci-state/fault-run"
rm -rf "$work" && mkdir -p "$work"
ensure_venv
cargo build --quiet --workspace --bins
bin="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
started_at=$SECONDS

start_moto "$work/moto.log"
export AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true NO_COLOR=1

key="fault-run-key"
port="$(free_port)"
services=(fault-01 fault-02 fault-03 fault-04 fault-05)
faults=(--fault-seed 20261129 --error-500-fraction 0.10 --too-many-requests-fraction 0.05
  --retry-after-fraction 0.5 --retry-after-seconds 1 --hang-fraction 0.02 --hang-max-seconds 6
  --not-mackerel-answer-fraction 0.02 --drop-after-store-fraction 0.02)
(( calm )) && faults=()
"$bin/mackerel-standin" --listen "127.0.0.1:$port" --api-key "$key" \
  $(printf -- '--service %s ' "${services[@]}") "${faults[@]}" >"$work/standin.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for_http "$port" 30
export MACKEREL_API_BASE="http://127.0.0.1:$port" MACKEREL_API_KEY="$key"

# The module's queue and DLQ (scripts/local_world.py) with two settings this run needs:
# a 20 s visibility timeout, so failed messages come back fast, and 3 receives
# before the DLQ, so that redrives happen.
queues="$("$VENV/bin/python" scripts/local_world.py queues --name "fault-run-$(date +%s)" \
  --visibility-timeout 20 --max-receive-count 3)"
eval "$queues"

say "flood: $messages messages (2% malformed, 1% too old)"
"$bin/sfn-mackerel" flood --queue-url "$QUEUE_URL" --count "$messages" --concurrency 8 \
  $(printf -- '--service %s ' "${services[@]}") --jobs 20 --executions $((messages / 20 + 1)) \
  --malformed-fraction 0.02 --too-old-fraction 0.01 --spread-minutes 1380 --seed 7 \
  --manifest "$work/manifest.jsonl"

runner_env=(MACKEREL_MAX_ATTEMPTS=2 MACKEREL_TIMEOUT_MS=2000 BACKOFF_BASE_MS=100 BACKOFF_CAP_MS=1000
  DLQ_URL="$DLQ_URL" AWS_LAMBDA_LOG_FORMAT=text RUST_LOG="${FAULT_RUN_LOG:-warn}")
start_runner() {
  env "${runner_env[@]}" "$bin/sfn-mackerel-consumer" poll --queue-url "$QUEUE_URL" \
    --batch-size 500 --batching-window-ms 500 --concurrency 2 "$@" >>"$work/runner.log" 2>&1 &
  RUNNER_PID=$!
  STARTED_PIDS+=("$RUNNER_PID")
}
tsdb_requests() {
  python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/_standin/counters"))["tsdb_requests_total"])' "$MACKEREL_API_BASE"
}

kill_rounds=(1 2)
(( calm )) && kill_rounds=()
for kill_round in "${kill_rounds[@]}"; do
  start_runner
  target=$(( $(tsdb_requests) + 15 ))
  for _ in $(seq 1 600); do   # at most 120 s
    (( $(tsdb_requests) >= target )) && break
    sleep 0.2
  done
  say "SIGKILL the runner mid-run ($kill_round of 2) after $(tsdb_requests) requests"
  kill -KILL "$RUNNER_PID"
  wait "$RUNNER_PID" 2>/dev/null || true
  forget_started "$RUNNER_PID"
done

# Idle longer than the visibility timeout, so messages that failed come back first.
drain() { start_runner --exit-when-idle-secs 30; wait "$RUNNER_PID"; forget_started "$RUNNER_PID"; }
say "restart the runner and drain"
drain
for round in 1 2 3 4 5; do
  moved="$("$bin/sfn-mackerel" --json dlq redrive --dlq-url "$DLQ_URL" --reason retries_exhausted \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["figures"]["moved"])' || echo error)"
  say "redrive round $round: moved $moved messages parked for exhausted retries"
  [[ "$moved" == "0" ]] && break
  [[ "$moved" == "error" ]] && { echo "dlq redrive failed" >&2; exit 1; }
  drain
done

say "verify"
set +e
"$bin/sfn-mackerel" verify --manifest "$work/manifest.jsonl" --dlq-url "$DLQ_URL" \
  --wait-drained --queue-url "$QUEUE_URL" --timeout 120
verdict=$?
set -e
"$bin/sfn-mackerel" dlq peek --dlq-url "$DLQ_URL" --max 2000 --samples 0 || true
python3 - "$MACKEREL_API_BASE" <<'PY'
import json, sys, urllib.request
c = json.load(urllib.request.urlopen(sys.argv[1] + "/_standin/counters"))
print("stand-in: tsdb requests {tsdb_requests_total}, by status {tsdb_requests_by_status}, "
      "hung {requests_hung}, values accepted {values_accepted}".format(**c))
PY
echo "fault run: $messages messages in $((SECONDS - started_at)) s"
if (( verdict == 0 )); then
  echo "fault run: 1 passed, 0 failed"
else
  echo "fault run: 0 passed, 1 failed (verify exited $verdict)"
  exit 1
fi
