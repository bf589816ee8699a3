#!/usr/bin/env bash
# Runs the README's test command with the clock moved (default: a year ahead),
# to prove that no test, benchmark step or demo depends on today's date.
#   ./scripts/clock-check.sh [+365d]
# Run ./scripts/test.sh once first: under a moved clock the package registries'
# TLS certificates look expired, so .venv, .node and target must already hold
# everything. The compilers run with the real clock (scripts/outside-faketime.py
# says why); every test, server and binary runs with the moved one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
offset="${1:-+365d}"

if ! command -v faketime >/dev/null; then
  say "installing Debian's faketime"
  apt-get update -q >/dev/null
  apt-get install -y -q faketime >/dev/null
fi
for ready in .venv/bin/python .node/node_modules/asl-validator target/debug; do
  [[ -e "$ready" ]] || { echo "$ready is missing: run ./scripts/test.sh once before the clock check" >&2; exit 2; }
done
mkdir -p .ci-state
for compiler in rustc rustdoc; do
  ln -sf "$REPO_ROOT/scripts/outside-faketime.py" ".ci-state/$compiler"
done
# The toolchain's own binaries, not rustup's proxies (which would run in the moved clock).
CLOCK_CHECK_RUSTC="$(rustc --print sysroot)/bin/rustc"
CLOCK_CHECK_RUSTDOC="$(rustc --print sysroot)/bin/rustdoc"
export CLOCK_CHECK_RUSTC CLOCK_CHECK_RUSTDOC
export RUSTC_WRAPPER="$REPO_ROOT/scripts/outside-faketime.py"
export RUSTC="$REPO_ROOT/.ci-state/rustc"
export RUSTDOC="$REPO_ROOT/.ci-state/rustdoc"
say "the test command with the clock at $(faketime -f "$offset" date -u +%Y-%m-%dT%H:%MZ)"
exec faketime -f "$offset" ./scripts/test.sh
