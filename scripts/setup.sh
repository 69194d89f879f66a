#!/usr/bin/env bash
# Installs everything s3mounts' demo and tests need on a fresh Debian 12
# machine (as root). Idempotent: a second run does nothing that is done.
#   scripts/setup.sh            everything
#   scripts/setup.sh go         only the Go side (Debian packages + MinIO)
# Prerequisites it checks first and cannot install from Debian (whose
# versions are too old): Go >= 1.26.8 and, for the JupyterLab side,
# Node.js >= 20.19 with npm. It says exactly what to install when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
what=${1:-all}

# Pinned versions. MinIO is built from the Go module proxy (cached in the
# Go build cache after the first build, ~5 min on 2 cores).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
GO_MIN=1.26.8
NODE_MIN=20.19.0   # vite 7 (the extension's unit tests) needs ^20.19 or >= 22.12

log() { printf '[setup] %s\n' "$*" >&2; }
# version_ge A B: A >= B, for dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# 1. Prerequisites, all checked before anything is installed.
missing=()
if [ -x /usr/local/go/bin/go ] && ! command -v go >/dev/null; then
  export PATH=/usr/local/go/bin:$PATH   # the official tarball's place, not yet on PATH
fi
# (from /, with the local toolchain: in the checkout an older go would try
# to fetch the toolchain go.mod names)
gov=$(cd / && GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//') || gov=
if [ -z "$gov" ] || ! version_ge "$gov" "$GO_MIN"; then
  missing+=("Go >= $GO_MIN (found: ${gov:-none}; Debian 12's golang-go is 1.19, too old).
      Install the official build: download go$GO_MIN.linux-amd64.tar.gz from https://go.dev/dl/, then
        rm -rf /usr/local/go && tar -C /usr/local -xzf go$GO_MIN.linux-amd64.tar.gz
        export PATH=/usr/local/go/bin:\$PATH")
fi
if [ "$what" = all ]; then
  nodev=$(node --version 2>/dev/null | sed 's/^v//') || nodev=
  if [ -z "$nodev" ] || ! version_ge "$nodev" "$NODE_MIN" || ! command -v npm >/dev/null; then
    missing+=("Node.js >= $NODE_MIN with npm (found: node ${nodev:-none}, npm $(npm --version 2>/dev/null || echo none); Debian 12's nodejs is 18.20, too old).
      Install Node.js 22 LTS, e.g. from NodeSource:
        curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs
      or the official build from https://nodejs.org/en/download (its bin/ on PATH).")
  fi
  if ! command -v python3 >/dev/null; then
    missing+=("python3 (Debian: apt-get install python3 python3-venv)")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "missing prerequisites; install these, then run this again:"
  for m in "${missing[@]}"; do printf '  - %s\n' "$m" >&2; done
  exit 1
fi

# 2. Debian packages (their versions suffice for these).
need_apt=()
for pkg in fuse3 s3fs util-linux procps curl systemd debootstrap systemd-container lintian python3-yaml rsync; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "$what" = all ]; then
  for pkg in chromium; do dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg"); done
  # python3 -m venv needs ensurepip: Debian's python3 has it in python3-venv
  # (a pyenv or official CPython has it built in).
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(command -v python3)" = /usr/bin/python3 ]; then
      need_apt+=(python3-venv)
    else
      log "$(command -v python3) cannot create virtualenvs (no venv/ensurepip module): install a python3 that can, or put Debian's (apt-get install python3-venv) first on PATH"
      exit 1
    fi
  fi
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 3. MinIO, built from source (the first time: minutes; a line every 20 s).
mkdir -p "$TOOLS/bin"
if [ ! -x "$TOOLS/bin/minio" ] || [ "$(cat "$TOOLS/minio.version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
  log "building MinIO $MINIO_VERSION from the Go module proxy: about 5 minutes on 2 cores the first time (then cached)"
  blog=$TOOLS/minio-build.log
  # its own session, so an interrupted setup stops the whole build
  (cd /tmp && GOFLAGS=-buildvcs=false GOBIN="$TOOLS/bin" exec setsid go install "github.com/minio/minio@$MINIO_VERSION") >"$blog" 2>&1 &
  bpid=$!
  trap 'kill -- -$bpid 2>/dev/null; log "MinIO build interrupted"; exit 130' INT TERM
  start=$SECONDS
  while kill -0 "$bpid" 2>/dev/null; do
    sleep 1
    el=$((SECONDS - start))
    if [ $((el % 20)) = 0 ] && kill -0 "$bpid" 2>/dev/null; then
      log "still building MinIO: $((el / 60))m$((el % 60))s so far (usually ~5 min the first time)"
    fi
  done
  if ! wait "$bpid"; then
    log "building MinIO failed; the end of its log ($blog):"
    tail -n 30 "$blog" >&2
    exit 1
  fi
  trap - INT TERM
  echo "$MINIO_VERSION" > "$TOOLS/minio.version"
  log "MinIO built in $((SECONDS - start)) s"
fi

# 4. The JupyterLab extension's venv and build (its own progress lines).
if [ "$what" = all ] && [ -x jupyter-ext/setup.sh ]; then
  jupyter-ext/setup.sh
fi
log "ready"
