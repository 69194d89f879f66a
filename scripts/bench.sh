#!/usr/bin/env bash
# Benchmarks of the built-in S3 mount against the direct SDK, s3fs, rclone
# and GeeseFS (when installed) on a local MinIO, optionally behind Toxiproxy
# with added latency. Not a test: prints a table of medians and ranges and
# writes .bench/results.json (+ docs/bench.png with -chart).
#
#   scripts/bench.sh [-latency 20ms] [-objects 20000 -size 256MiB -small 2000] [-rounds 3] [-chart]
#   make bench BENCH_ARGS='-latency 20ms'
#
# Every flag but -chart goes to the tool (internal/tools/bench; -h lists them).
#
# Needs root (FUSE mounts, drop_caches), .tools/bin/minio (scripts/setup.sh)
# and about 4 GiB free in .bench (MinIO data is kept there between runs, so
# fixtures are uploaded only once).
set -euo pipefail
cd "$(dirname "$0")/.."
chart=0
args=()
for a in "$@"; do
  case "$a" in
    -chart) chart=1 ;;
    *) args+=("$a") ;;
  esac
done
mkdir -p .bench
go build -o .bench/bench ./internal/tools/bench
.bench/bench -dir .bench -json .bench/results.json "${args[@]}" | tee .bench/results.md
if [ "$chart" = 1 ]; then
  if [ ! -x .bench/venv/bin/python ]; then
    python3 -m venv .bench/venv
    .bench/venv/bin/pip install -q -r scripts/bench-requirements.txt
  fi
  .bench/venv/bin/python scripts/bench_chart.py .bench/results.json docs/bench.png
fi
