#!/usr/bin/env bash
# Builds the artifact the Terraform module deploys, the consumer for Lambda's
# arm64 (provided.al2023), and checks it: target/lambda/sfn-mackerel-consumer/bootstrap.zip,
# the path and layout `cargo lambda build --release --arm64 --output-format zip` writes.
#   ./scripts/build-arm64.sh [--try-e2e]
# .ci/run runs it after the README's test command, so an arm64-only break shows in
# CI instead of in a user's `terraform apply`. It is not part of the test command:
# it installs system packages (Debian's cross toolchain, which can build for arm64
# where no rustup target can be downloaded), needs several GB for its own target
# directory and about 8 minutes on 2 cores.
#   1. installs what it lacks from Debian's packages, and cargo-lambda (PyPI);
#   2. runs the README's deploy command, `cargo lambda build --release --arm64
#      --output-format zip`, with `--compiler cargo` and Debian's rustc (target/arm64);
#   3. checks the zip (scripts/check_lambda_zip.py): an aarch64 ELF named
#      `bootstrap` at its root, executable, needing no glibc newer than Amazon
#      Linux 2023's, the zip under 5 MB;
#   4. runs the binary's `--version` under qemu's user emulation (Debian's
#      bookworm-backports qemu), and with --try-e2e the Runtime API test of
#      consumer/tests/binary_e2e.rs pointed at it (see the step for why not by default).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

try_e2e=0
case "${1:-}" in
  "") ;;
  --try-e2e) try_e2e=1 ;;
  *) echo "usage: $0 [--try-e2e]" >&2; exit 2 ;;
esac

TARGET=aarch64-unknown-linux-gnu
ARM64_TARGET_DIR="$REPO_ROOT/target/arm64"
LAMBDA_DIR="$REPO_ROOT/target/lambda"
ZIP="$LAMBDA_DIR/sfn-mackerel-consumer/bootstrap.zip"
NEEDED_FREE_GIB=4
MAX_ZIP_BYTES=$((5 * 1000 * 1000))
# Debian's toolchain, not rustup's: it is the one with an arm64 standard library.
DEBIAN_CARGO=/usr/bin/cargo
DEBIAN_RUSTC=/usr/bin/rustc

say "1/4 tools from Debian's packages"
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ! dpkg-query -W -f '${Version}' qemu-user-static 2>/dev/null | grep -q '^1:1[0-9]'; then
  missing+=(qemu-user-static)
fi
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  dpkg --add-architecture arm64
  # qemu 7.2 (bookworm) hangs running the consumer; bookworm-backports has 10.x.
  backports=/etc/apt/sources.list.d/sfn-mackerel-bookworm-backports.sources
  if ! grep -Eqs '^(Suites:|deb ).*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources; then
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$backports"
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${packages[@]}" >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t bookworm-backports qemu-user-static >/dev/null
fi
ensure_venv  # python-hcl2, through which local_world reads the example's lambda_zip_path
ensure_requirements "$VENV/cargo-lambda" scripts/requirements-cargo-lambda.txt

# The workspace's dependencies need rustc 1.94.1 or newer: bookworm has 1.85,
# bookworm-security's rustc-web 1.96.
if ! "$DEBIAN_RUSTC" --version | grep -Eq '^rustc 1\.(9[4-9]|[1-9][0-9]{2})\.'; then
  echo "$("$DEBIAN_RUSTC" --version) is too old for this workspace (needs 1.94.1 or newer): run apt-get update and install rustc-web and cargo-web from bookworm-security" >&2
  exit 1
fi

mkdir -p "$REPO_ROOT/target"
free_kib="$(df -Pk "$REPO_ROOT/target" | awk 'NR == 2 { print $4 }')"
if ((free_kib < NEEDED_FREE_GIB * 1024 * 1024)); then
  echo "only $((free_kib / 1024)) MiB free under target/: the arm64 build needs about ${NEEDED_FREE_GIB} GiB for target/arm64; free some space (cargo clean) and rerun" >&2
  exit 1
fi

say "2/4 bootstrap.zip for $TARGET: cargo lambda build with $("$DEBIAN_RUSTC" --version)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
rm -f "$ZIP"
# The README's deploy command, with `--compiler cargo` (plain cargo instead of
# cargo-lambda's default Zig linker) and Debian's cargo first on PATH.
PATH="$(dirname "$DEBIAN_CARGO"):$PATH" RUSTC="$DEBIAN_RUSTC" CARGO_TARGET_DIR="$ARM64_TARGET_DIR" \
  "$VENV/cargo-lambda/bin/cargo-lambda" lambda build --release --arm64 --output-format zip \
  --lambda-dir "$LAMBDA_DIR" --compiler cargo --locked -p sfn-mackerel-consumer
binary="$ARM64_TARGET_DIR/$TARGET/release/sfn-mackerel-consumer"

say "3/4 the zip as Lambda and the module expect it"
"$VENV/bin/python" scripts/check_lambda_zip.py "$ZIP" --machine aarch64 --max-bytes "$MAX_ZIP_BYTES" \
  --objdump aarch64-linux-gnu-objdump

# The example's default lambda_zip_path, resolved from its directory, must be this zip.
example_zip="$("$VENV/bin/python" -c 'import sys; sys.path.insert(0, "scripts"); import local_world
print((local_world.EXAMPLE_DIR / local_world.example_defaults()["lambda_zip_path"]).resolve())')"
if [[ "$example_zip" != "$(realpath -m "$ZIP")" ]]; then
  echo "the example's lambda_zip_path default points at $example_zip, not at $ZIP where cargo lambda writes" >&2
  exit 1
fi
echo "ok   the example's default lambda_zip_path is this zip"

say "4/4 the arm64 binary under qemu's user emulation"
emulated=(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$binary")
# Loads, links against the arm64 glibc and parses its arguments; bounded, as is all below.
version="$(timeout 60 "${emulated[@]}" --version)"
echo "$version"
[[ "$version" == "sfn-mackerel-consumer "* ]] || { echo "the arm64 binary did not print its version under qemu" >&2; exit 1; }
if ((try_e2e)); then
  # The Runtime API test against the arm64 binary. On the machines this project is
  # built on, qemu-user never starts a guest thread (a C program's one
  # pthread_create spins, with qemu 7.2 and 10.0), so this hangs there; it is
  # offered for machines where qemu runs threads.
  start_moto
  trap stop_started EXIT
  runner="$REPO_ROOT/.ci-state/arm64-bootstrap"
  mkdir -p "$REPO_ROOT/.ci-state"
  printf '#!/bin/sh\nexec %q %q %q %q "$@"\n' "${emulated[@]}" >"$runner"
  chmod +x "$runner"
  SFN_MACKEREL_CONSUMER_BINARY="$runner" timeout 300 \
    cargo test -q -p sfn-mackerel-consumer --test binary_e2e -- lambda_binary
fi
say "arm64: $(stat -c %s "$binary") B binary, $(stat -c %s "$ZIP") B $ZIP"
