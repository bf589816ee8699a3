#!/usr/bin/env bash
# Offline checks of terraform/ (no terraform binary can be installed here):
#   1. every .tf file parses (python-hcl2);
#   2. checkov finds no failed check (each skip is justified in place);
#   3. the example's state machine, rendered as Terraform renders it, is valid
#      Amazon States Language (asl-validator), in both variants of its
#      results_via (sendMessage, events);
#   4. terraform/tests: the wiring `terraform validate` would check (variables,
#      module inputs and outputs, template placeholders), the test kit's constants
#      against the module's defaults (scripts/local_world.py reads them from the HCL),
#      the workflow's run in moto's Step Functions (scripts/moto_server.py,
#      started and stopped by the tests), and its events-only variant's events
#      through the module's EventBridge rules in moto.
# Installs what it needs into .venv, .venv/checkov and .node (all gitignored).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
checkov_report="" rendered=""
trap 'stop_started; rm -f "$checkov_report" "$rendered"' EXIT INT TERM

ASL_VALIDATOR_VERSION=4.0.0
CHECKOV_VENV="$VENV/checkov"

ensure_asl_validator() {
  local installed=""
  if [[ -f .node/node_modules/asl-validator/package.json ]]; then
    installed="$(node -p 'require("./.node/node_modules/asl-validator/package.json").version')"
  fi
  if [[ "$installed" != "$ASL_VALIDATOR_VERSION" ]]; then
    say "installing asl-validator@$ASL_VALIDATOR_VERSION into .node"
    npm install --prefix .node --no-audit --no-fund --silent "asl-validator@$ASL_VALIDATOR_VERSION" >/dev/null
  fi
}

ensure_venv
ensure_requirements "$CHECKOV_VENV" scripts/requirements-checkov.txt
ensure_asl_validator

say "1/4 parse every .tf file (python-hcl2)"
"$VENV/bin/python" - <<'PY'
import pathlib, sys
import hcl2

files = sorted(pathlib.Path("terraform").rglob("*.tf"))
files = [f for f in files if ".terraform" not in f.parts]
bad = []
for path in files:
    try:
        with path.open(encoding="utf-8") as handle:
            hcl2.load(handle)
    except Exception as error:  # the parser raises several types; report them all alike
        bad.append(f"{path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
if not files:
    sys.exit("no .tf files found under terraform/")
if bad:
    sys.exit("these .tf files do not parse; fix the HCL syntax:\n  " + "\n  ".join(bad))
print(f"{len(files)} .tf files parse")
PY

say "2/4 checkov on terraform/"
checkov_report="$(mktemp)"
# One run, JSON report; its exit status is judged from the report below.
"$CHECKOV_VENV/bin/checkov" --framework terraform --directory terraform --skip-download \
  --download-external-modules false --output json >"$checkov_report" 2>/dev/null || true
"$VENV/bin/python" - "$checkov_report" <<'PY'
import json, sys

try:
    reports = json.load(open(sys.argv[1], encoding="utf-8"))
except ValueError:
    sys.exit("checkov produced no report: run .venv/checkov/bin/checkov -d terraform to see why")
reports = reports if isinstance(reports, list) else [reports]
total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
for report in reports:
    for key in total:
        total[key] += report.get("summary", {}).get(key, 0)
    for check in report.get("results", {}).get("failed_checks", []):
        lines = check.get("file_line_range", ["?"])
        print(f"FAILED {check['check_id']} {check['resource']} "
              f"({check['file_path'].lstrip('/')}:{lines[0]}): {check.get('check_name', '')}")
print("checkov: {passed} passed, {failed} failed, {skipped} skipped with a reason in place, "
      "{parsing_errors} parsing errors".format(**total))
if total["failed"] or total["parsing_errors"]:
    sys.exit("fix each failed resource, or skip the check in place with a reason: "
             "#checkov:skip=<ID>:<why it does not apply here>")
PY

say "3/4 validate the rendered state machine, both variants (asl-validator)"
rendered="$(mktemp --suffix=.asl.json)"
for via in sendMessage events; do
  "$VENV/bin/python" terraform/tests/render_asl.py --via "$via" --out "$rendered"
  if ! .node/node_modules/.bin/asl-validator --json-path "$rendered"; then
    echo "the rendered workflow (results_via = $via) is not valid ASL: fix terraform/examples/glue-workflow/*.asl.json.tftpl" >&2
    exit 1
  fi
done

say "4/4 terraform/tests: wiring, the workflow run in moto's Step Functions, its events through EventBridge"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider terraform/tests
