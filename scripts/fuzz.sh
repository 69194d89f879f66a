#!/usr/bin/env bash
# Runs every Fuzz target of every package in the module, one after the other.
#   scripts/fuzz.sh BUDGET [MINIMIZE_BUDGET]
# BUDGET is go test's -fuzztime: a count ("60000x", used by `make fuzz-short`)
# or a duration ("5m", `make fuzz`). A count has no wall-clock deadline, so a
# starved CPU only makes the run slower: Go 1.26's coordinator can otherwise
# race its own -fuzztime deadline and report "context deadline exceeded" for a
# healthy target (go.dev/issue/75804). MINIMIZE_BUDGET (-fuzzminimizetime)
# should be a count too, for the same reason.
# A failing input, found now or already in testdata/fuzz, fails the run; the
# reproducer Go wrote is named in the message.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:?usage: scripts/fuzz.sh BUDGET [MINIMIZE_BUDGET]}
minimize=${2:-}
GO=${GO:-go}

# Packages whose test files declare a Fuzz function; `go test -list` then
# says which of them are really targets (build tags, _test packages).
targets=()
while read -r pkg dir; do
  grep -qs '^func Fuzz' "$dir"/*_test.go || continue
  for f in $("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    targets+=("$pkg $dir $f")
  done
done < <("$GO" list -f '{{.ImportPath}} {{.Dir}}' ./...)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no Fuzz targets found in any package (go test -list '^Fuzz' ./...); nothing was fuzzed" >&2
  exit 1
fi

for t in "${targets[@]}"; do
  read -r pkg dir f <<<"$t"
  echo "fuzz $pkg $f (-fuzztime $budget)"
  start=$SECONDS
  if ! "$GO" test -run '^$' -fuzz "^$f\$" -fuzztime "$budget" ${minimize:+-fuzzminimizetime "$minimize"} "$pkg"; then
    echo "fuzz: $f in $pkg failed; the failing input is in $dir/testdata/fuzz/$f/ (rerun it: go test -run '$f/<file>' $pkg)" >&2
    exit 1
  fi
  echo "fuzz $f: ok in $((SECONDS - start))s"
done
