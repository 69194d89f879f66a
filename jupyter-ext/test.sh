#!/usr/bin/env bash
# Runs every test of the JupyterLab extension: the server extension's pytest
# suite (real s3mountd + MinIO), the TypeScript unit tests (vitest) and the
# browser end-to-end test (Playwright in Debian's headless Chromium, real
# s3mountd, MinIO and `jupyter lab` with the wheel installed).
# Prints "N passed, N failed" for each suite and exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
ART=$ROOT/.artifacts/jupyter-ext
mkdir -p "$ART"
./setup.sh || { echo "jupyter-ext: setup failed"; exit 1; }
[ -x "$ROOT/bin/s3mountd" ] || make -C "$ROOT" --no-print-directory build >/dev/null
PY=.venv/bin/python
rc=0

# junit XML -> "N passed, N failed" (skips reported, never counted as passed)
junit_counts() {
  "$PY" - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as e:
    print(f"0 passed, 1 failed (no report: {e})"); sys.exit(0)
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(f"{t - f - k} passed, {f} failed" + (f", {k} skipped" if k else ""))
PYEOF
}

suite() { # name, junit file, exit code
  local line
  line=$(junit_counts "$2")
  echo "jupyter-ext $1: $line"
  echo "$line"
  if [ "$3" -ne 0 ] || [[ "$line" != *" 0 failed"* ]] || [[ "$line" == 0\ passed* ]]; then rc=1; fi
}

echo "== jupyter-ext: pytest (server extension against s3mountd + MinIO)"
"$PY" -m pytest tests -q -p no:cacheprovider --junitxml="$ART/pytest.xml"
suite pytest "$ART/pytest.xml" $?

echo "== jupyter-ext: vitest (TypeScript model)"
npx --no-install vitest run --reporter=default --reporter=junit --outputFile.junit="$ART/vitest.xml" 2>&1 | grep -v 'Unknown user config "nodedir"'
suite vitest "$ART/vitest.xml" ${PIPESTATUS[0]}

echo "== jupyter-ext: browser end to end (Playwright + Debian chromium)"
"$PY" -m pytest ui-tests -q -s -p no:cacheprovider --junitxml="$ART/e2e.xml"
suite e2e "$ART/e2e.xml" $?
[ -f "$ART/figures.txt" ] && { echo "figures (also in $ART/figures.txt):"; tail -n 3 "$ART/figures.txt"; }
echo "screenshots: $ART/*.png"
exit $rc
