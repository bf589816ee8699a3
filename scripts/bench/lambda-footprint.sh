#!/usr/bin/env bash
# Cold start, peak memory, handling time and package size of the consumer's
# Lambda binary, measured on this machine against local stand-ins: moto (the
# DLQ and the API key's secret), the Mackerel stand-in, and the test kit's
# Lambda Runtime API (consumer/benches/lambda_footprint.rs). Goals: init under 50 ms,
# peak RSS under 64 MB for a 10,000-record event, zip under 5 MB.
#
# Usage: scripts/bench/lambda-footprint.sh [ITERATIONS]   (default 5)
# Env:   RECORDS (10000), MALFORMED_PERCENT (1), KEEP_LOGS=1 to keep the logs.
#
# This measures the x86_64 release build (`cargo build --release`), not the
# arm64 one that `cargo lambda build --release --arm64` makes: that needs the
# aarch64 Rust target (a download) and a cross linker.
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ITERATIONS="${1:-5}"
RECORDS="${RECORDS:-10000}"
MALFORMED_PERCENT="${MALFORMED_PERCENT:-1}"
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

say "building the release binary (fat LTO: a few minutes when cold)"
cargo build --release --quiet -p sfn-mackerel-consumer
BINARY="$TARGET_DIR/release/sfn-mackerel-consumer"

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

say "building the footprint bench (the test kit's Lambda Runtime API, the stand-in, moto's secret and DLQs)"
cargo bench --no-run --quiet -p sfn-mackerel-consumer --bench lambda_footprint

say "starting moto"
start_moto "$WORK/moto.log"

say "$ITERATIONS cold starts, one ${RECORDS}-record event each ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
RUST_LOG="${RUST_LOG:-info}" \
  cargo bench --quiet -p sfn-mackerel-consumer --bench lambda_footprint -- \
  --binary "$BINARY" --iterations "$ITERATIONS" --records "$RECORDS" \
  --malformed-percent "$MALFORMED_PERCENT" --log "$WORK/consumer.log" \
  --json "$WORK/footprint.json"
