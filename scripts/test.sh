#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: formatting, lints, unit tests,
# the tests against real servers on loopback (moto for SQS / Secrets Manager /
# Step Functions, the Mackerel stand-in), the offline Terraform checks with the
# example workflow executed in moto, the fault run (scripts/fault-run.sh), and the
# demo as a smoke test. It installs
# and starts every server it needs itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
trap stop_started EXIT INT TERM

ensure_venv

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

say "starting moto server on loopback"
start_moto
say "moto at $MOTO_URL"

say "cargo test"
cargo test --workspace

say "terraform: parse, checkov, ASL validation, the example workflow run in moto and drained into the stand-in"
cargo build --quiet --workspace --bins
SFN_MACKEREL_BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug" bash scripts/check-terraform.sh

say "the fault run: 20,000 messages through faults and SIGKILLs, then verify"
./scripts/fault-run.sh

say "the demo, as a newcomer runs it"
demo_output="$(./scripts/demo.sh --no-wait 2>&1)" || { echo "$demo_output"; exit 1; }
for expected in "make_alarm .*CRITICAL" "make_order .*CRITICAL" "workflow glue-workflow-events .*latest failed 1.*alert CRITICAL" \
  "malformed_json" "Left in the source queue: 0"; do
  if ! grep -Eq "$expected" <<<"$demo_output"; then
    echo "$demo_output"
    echo "the demo's report lacks: $expected" >&2
    exit 1
  fi
done
echo "demo: 1 passed, 0 failed"
