# Shared shell functions for the demo and the test scripts: a project-local
# Python venv with the pinned local AWS stand-in, free loopback ports, and
# starting/stopping only the processes these scripts started.
# Sourced, not executed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
STARTED_PIDS=()

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# Installs a pinned requirements file into a venv once; again when its pins change.
ensure_requirements() {
  local venv="$1" requirements="$2"
  local stamp="$venv/.$(basename "$requirements").sha256" want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  say "installing $(basename "$requirements") into ${venv#"$REPO_ROOT"/}"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
}

# The project venv: the pinned local AWS stand-in (moto), and python-hcl2 (with
# pytest) through which scripts/local_world.py reads the Terraform module's settings.
ensure_venv() {
  ensure_requirements "$VENV" "$REPO_ROOT/scripts/requirements.txt"
  ensure_requirements "$VENV" "$REPO_ROOT/scripts/requirements-terraform.txt"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until http://127.0.0.1:PORT answers (any status), at most SECONDS.
wait_for_http() {
  local port="$1" seconds="${2:-30}" deadline=$((SECONDS + ${2:-30}))
  while ((SECONDS < deadline)); do
    if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
except urllib.error.HTTPError:
    pass
PY
    sleep 0.2
  done
  echo "nothing answered on 127.0.0.1:$port within ${seconds}s" >&2
  return 1
}

# Starts moto server (through scripts/moto_server.py, which patches the gaps the
# workflow test needs) on a free loopback port; sets MOTO_URL and remembers the pid.
start_moto() {
  local port log="${1:-/dev/null}"
  port="$(free_port)"
  "$VENV/bin/python" "$REPO_ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  STARTED_PIDS+=("$!")
  wait_for_http "$port" 30
  export MOTO_URL="http://127.0.0.1:$port"
}

# Drops a process that ended (and was waited for) from STARTED_PIDS, so that
# stop_started never signals its id, which the system may have given to another.
forget_started() {
  local pid kept=()
  for pid in "${STARTED_PIDS[@]}"; do
    [[ "$pid" == "$1" ]] || kept+=("$pid")
  done
  STARTED_PIDS=("${kept[@]}")
}

# Stops every process this script started, by its id, and nothing else.
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}
