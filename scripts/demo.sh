#!/usr/bin/env bash
# The whole pipeline on this machine, on local stand-ins: moto for SQS and Secrets
# Manager, the Mackerel stand-in for Mackerel. Sends the results of four runs of
# the README's workflow (one job failing in the latest) and a malformed message,
# drains them with the consumer's queue runner, and shows what reached Mackerel,
# the alert, and the DLQ. Stops everything it started when it ends or is
# interrupted; run it again any time.
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

say "building the consumer and the Mackerel stand-in (first time: a few minutes)"
cargo build --quiet -p sfn-mackerel-consumer -p mackerel-standin --bins
bin_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"

say "starting moto (SQS, Secrets Manager) on loopback"
start_moto .demo/moto.log

export DEMO_API_KEY="demo-write-key"
port="$(free_port)"
say "starting the Mackerel stand-in on 127.0.0.1:$port"
"$bin_dir/mackerel-standin" --listen "127.0.0.1:$port" --api-key "$DEMO_API_KEY" --service ORGANIZATION \
  >.demo/standin.log 2>&1 &
STARTED_PIDS+=("$!")
wait_for_http "$port" 30
export MACKEREL_API_BASE="http://127.0.0.1:$port"

say "creating the queue, its DLQ (redrive after 5 receives), the secret and the monitors"
eval "$("$VENV/bin/python" scripts/demo_steps.py setup)"
export QUEUE_URL DLQ_URL

say "the workflow sends its job results to the queue"
"$VENV/bin/python" scripts/demo_steps.py send

# One poller with a 3 s window, like the event source mapping's batching window:
# the run's results reach Mackerel in one batch, oldest to newest within each series.
say "the consumer drains the queue into Mackerel (key read from Secrets Manager)"
AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
AWS_EC2_METADATA_DISABLED=true MACKEREL_API_KEY_SECRET_ID=sfn-mackerel/api-key \
AWS_LAMBDA_LOG_FORMAT=text NO_COLOR=1 \
  "$bin_dir/sfn-mackerel-consumer" poll --queue-url "$QUEUE_URL" --batch-size 1000 \
  --batching-window-ms 3000 --concurrency 1 --exit-when-idle-secs 3 2>&1 | sed 's/^/    /'

"$VENV/bin/python" scripts/demo_steps.py report
echo
echo "The stand-in's page with the graphs and alerts: $MACKEREL_API_BASE/"
if $wait_at_end; then
  read -r -p "Press Enter to stop the demo (everything it started stops with it) " _ || true
fi
