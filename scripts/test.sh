#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: formatting, lints, unit tests,
# and the tests against real servers on loopback (moto for SQS / Secrets Manager,
# the Mackerel stand-in), which this script installs and starts itself.
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
