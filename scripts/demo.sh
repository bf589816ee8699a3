#!/usr/bin/env bash
# The whole pipeline on this machine, on local stand-ins: moto for SQS, Secrets
# Manager, Glue and Step Functions, the Mackerel stand-in for Mackerel. It runs what
# a user deploys (scripts/local_world.py): the queue and its DLQ with the Terraform
# module's settings, the monitoring module's job monitors, and the example workflow
# executing in moto's Step Functions, whose sendMessage states send the job results.
# The story: three earlier runs, every job succeeded, posted with the operator CLI
# (`sfn-mackerel send`); then one execution of the workflow in which make_alarm's
# Glue run fails; then one of the same workflow deployed with results_via = "events"
# (no sendMessage state) in which make_alarm and make_order fail, reported only by
# the events Glue and Step Functions emit, through the module's EventBridge rules; a
# malformed message; the consumer's queue runner drains the queue; then what reached
# Mackerel, the alerts, and the DLQ (`sfn-mackerel dlq peek`).
# Stops everything it started when it ends or is interrupted; run it again any time.
#   ./scripts/demo.sh            (waits for Enter at the end so you can open the page)
#   ./scripts/demo.sh --no-wait  (ends right away)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
trap stop_started EXIT
trap 'exit 130' INT TERM

wait_at_end=true
[[ "${1:-}" == "--no-wait" || ! -t 0 ]] && wait_at_end=false

mkdir -p .demo
ensure_venv

say "building the consumer, the operator CLI and the Mackerel stand-in (first time: a few minutes)"
cargo build --quiet --workspace --bins
bin_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
steps() { "$VENV/bin/python" scripts/demo_steps.py "$@"; }

export DEMO_API_KEY="demo-write-key"
# The Mackerel service of the README's examples (the example workflow's default is glue-jobs).
export SERVICE="ORGANIZATION"
port="$(free_port)"
say "starting the Mackerel stand-in on 127.0.0.1:$port, and moto (SQS, Secrets Manager, Glue, Step Functions)"
"$bin_dir/mackerel-standin" --listen "127.0.0.1:$port" --api-key "$DEMO_API_KEY" --service "$SERVICE" \
  >.demo/standin.log 2>&1 &
STARTED_PIDS+=("$!")
start_moto .demo/moto.log
wait_for_http "$port" 30
export MACKEREL_API_BASE="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true NO_COLOR=1
# moto's first Step Functions execution takes seconds: have it while the next steps run.
steps warm-up >.demo/warm-up.log 2>&1 &
warm_up_pid=$!
STARTED_PIDS+=("$warm_up_pid")

say "creating what Terraform creates: the queue and its DLQ, the secret, the job monitors"
exports="$(steps setup)"
eval "$exports"
read -r -a jobs <<<"$JOBS"

say "history: three earlier runs, 10 minutes apart, every job succeeded (posted with sfn-mackerel send)"
for run in 1 2 3; do
  at="$(date -u -d "-$(( (4 - run) * 10 )) minutes" +%Y-%m-%dT%H:%M:%SZ)"
  summary=() sends=()
  for i in "${!jobs[@]}"; do
    seconds=$(( 40 + 17 * i + run ))
    for metric in "failed 0" "seconds $seconds"; do
      read -r name value <<<"$metric"
      command=("$bin_dir/sfn-mackerel" send --queue-url "$QUEUE_URL" --service "$SERVICE"
        --name "$METRIC_PREFIX.${jobs[$i]}.$name" --value "$value" --time "$at")
      (( run == 1 && i == 0 && value == 0 )) && echo "    e.g. sfn-mackerel ${command[*]:1}"
      "${command[@]}" >/dev/null &   # a run's values at once, as its parallel jobs end together
      sends+=("$!")
      STARTED_PIDS+=("$!")
    done
    summary+=("${jobs[$i]} failed=0 seconds=$seconds")
  done
  for pid in "${sends[@]}"; do
    wait "$pid"
    forget_started "$pid"
  done
  echo "    run at $at: ${summary[*]}"
done

say "this run: the example workflow executes in moto's Step Functions; make_alarm's Glue run fails"
wait "$warm_up_pid" || { cat .demo/warm-up.log >&2; echo "moto's Step Functions did not run a workflow: see .demo/moto.log" >&2; exit 1; }
forget_started "$warm_up_pid"
steps workflow

say "the next run reports through events only (results_via = \"events\"): make_alarm and make_order fail"
steps events

say "a malformed message, as a typo in a hand-written MessageBody sends it"
steps malformed

# One poller with a 1 s window, like the event source mapping's batching window
# (everything is queued already, so 1 s gathers it all): all results reach Mackerel
# in one batch, oldest to newest within each series.
say "the consumer drains the queue into Mackerel (key read from Secrets Manager; events mapped as the module sets it)"
MACKEREL_API_KEY_SECRET_ID="$SECRET_ID" AWS_LAMBDA_LOG_FORMAT=text \
  EVENT_SERVICE="$SERVICE" EVENT_GLUE_PREFIX="$METRIC_PREFIX" EVENT_WORKFLOW_PREFIX="$WORKFLOW_PREFIX" \
  "$bin_dir/sfn-mackerel-consumer" poll --queue-url "$QUEUE_URL" --batch-size 1000 \
  --batching-window-ms 1000 --concurrency 1 --exit-when-idle-secs 1 2>&1 | sed 's/^/    /'

steps report
echo
echo "What sits in the DLQ (sfn-mackerel dlq peek --dlq-url \$DLQ_URL):"
"$bin_dir/sfn-mackerel" dlq peek --dlq-url "$DLQ_URL" | sed 's/^/  /'
echo
echo "The stand-in's page with the graphs and alerts: $MACKEREL_API_BASE/"
if $wait_at_end; then
  read -r -p "Press Enter to stop the demo (everything it started stops with it) " _ || true
fi
