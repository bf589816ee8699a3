#!/usr/bin/env bash
# Cold start, peak memory, handling time and package size of the consumer's
# Lambda binary, measured on this machine against local stand-ins: moto (the
# DLQ and the API key's secret), the Mackerel stand-in, and a minimal Lambda
# Runtime API (scripts/bench/lambda_footprint.py). Goals: init under 50 ms,
# peak RSS under 64 MB for a 10,000-record event, zip under 5 MB.
#
# Usage: scripts/bench/lambda-footprint.sh [ITERATIONS]   (default 5)
# Env:   RECORDS (10000), MALFORMED_PERCENT (1), KEEP_LOGS=1 to keep the logs.
#
# This measures the x86_64 release build (`cargo build --release`), not the
# arm64 one that `cargo lambda build --release --arm64` makes: that target is a
# download that CI must not depend on (shared/notes/rust.md).
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ITERATIONS="${1:-5}"
RECORDS="${RECORDS:-10000}"
MALFORMED_PERCENT="${MALFORMED_PERCENT:-1}"
API_KEY="footprint-bench-key"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
WORK="$(mktemp -d)"

cleanup() {
  stop_started
  if [[ "${KEEP_LOGS:-0}" == 1 ]]; then
    say "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

ensure_venv

say "building the release binaries (fat LTO: a few minutes when cold)"
cargo build --release --quiet -p sfn-mackerel-consumer -p mackerel-standin
BINARY="$TARGET_DIR/release/sfn-mackerel-consumer"
STANDIN="$TARGET_DIR/release/mackerel-standin"

say "package size"
cp "$BINARY" "$WORK/bootstrap"
if command -v zip >/dev/null; then
  (cd "$WORK" && zip -q -9 bootstrap.zip bootstrap)
else
  "$VENV/bin/python" -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(sys.argv[2], "bootstrap")' "$WORK/bootstrap.zip" "$WORK/bootstrap"
fi
binary_bytes="$(stat -c %s "$BINARY")"
zip_bytes="$(stat -c %s "$WORK/bootstrap.zip")"
awk -v b="$binary_bytes" -v z="$zip_bytes" 'BEGIN {
  printf "release binary (x86_64): %d bytes (%.2f MiB); bootstrap.zip: %d bytes (%.2f MiB)\n", b, b / 1048576, z, z / 1048576
}'

say "starting moto with the API key's secret (the driver makes a fresh DLQ per cold start)"
start_moto "$WORK/moto.log"
SECRET_ID="$("$VENV/bin/python" - "$MOTO_URL" "$API_KEY" <<'PY'
import sys, uuid, boto3
url, key = sys.argv[1], sys.argv[2]
secrets = boto3.client("secretsmanager", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
secret = secrets.create_secret(Name=f"footprint/mackerel-api-key-{uuid.uuid4().hex[:8]}",
                               SecretString=key)
print(secret["ARN"])
PY
)"

say "starting the Mackerel stand-in"
standin_port="$(free_port)"
"$STANDIN" --listen "127.0.0.1:$standin_port" --api-key "$API_KEY" \
  --service team-0 --service team-1 --service team-2 --service team-3 --service team-4 \
  >"$WORK/standin.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for_http "$standin_port" 30

say "$ITERATIONS cold starts, one ${RECORDS}-record event each ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
AWS_ENDPOINT_URL="$MOTO_URL" \
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
AWS_EC2_METADATA_DISABLED=true \
MACKEREL_API_KEY_SECRET_ID="$SECRET_ID" \
MACKEREL_API_BASE="http://127.0.0.1:$standin_port" \
RUST_LOG="${RUST_LOG:-info}" \
  "$VENV/bin/python" "$REPO_ROOT/scripts/bench/lambda_footprint.py" \
  --binary "$BINARY" --iterations "$ITERATIONS" --records "$RECORDS" \
  --malformed-percent "$MALFORMED_PERCENT" --log "$WORK/consumer.log" \
  --json "$WORK/footprint.json"
