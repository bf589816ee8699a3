#!/usr/bin/env bash
# `sfn-mackerel flood` against a bare SendMessageBatch loop (the drain benchmark's
# fill, 8 calls in flight), on the same moto server, alternating three times.
# Both are release builds; both send FLOOD_MESSAGES (default 20000) messages of
# about 250 bytes into a fresh queue. Prints each rate and the ratio per round.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
trap stop_started EXIT
trap 'exit 130' INT TERM
messages="${FLOOD_MESSAGES:-20000}"
ensure_venv
cargo build --quiet --release -p sfn-mackerel-producer
bench_binary="$(cargo bench --no-run -p sfn-mackerel-consumer --bench drain --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "drain":
        print(m["executable"])' | tail -1)"
start_moto
export AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
cli="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/sfn-mackerel"
for round in 1 2 3; do
  bare="$(BENCH_SEND_ONLY=1 BENCH_MESSAGES="$messages" "$bench_binary" | awk '/bare SendMessageBatch/ {print $(NF-1)}')"
  # A fresh queue with its DLQ, shaped like the Terraform module's (scripts/local_world.py).
  queues="$("$VENV/bin/python" scripts/local_world.py queues --name "flood-$(date +%s%N)")"
  eval "$queues"
  flood="$("$cli" --json flood --queue-url "$QUEUE_URL" --count "$messages" --concurrency 8 --seed "$round" \
    --manifest "$(mktemp)" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["achieved_rate"]))')"
  python3 -c "import sys; b,f=float(sys.argv[1]),float(sys.argv[2]); print(f'round {sys.argv[3]}: bare loop {b:.0f} msg/s, flood {f:.0f} msg/s, flood/bare {f/b:.2f}')" "$bare" "$flood" "$round"
done
