#!/usr/bin/env bash
# Installs everything s3mounts' demo and tests need on a fresh Debian 12
# machine (as root). Idempotent: a second run does nothing that is done.
#   scripts/setup.sh            everything
#   scripts/setup.sh go         only the Go side (Debian packages + MinIO)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
mkdir -p "$TOOLS/bin"
what=${1:-all}

# Pinned versions. MinIO is built from the Go module proxy (cached in the
# Go build cache after the first build, ~5 min on 2 cores).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
for pkg in fuse3 s3fs util-linux procps systemd debootstrap systemd-container lintian python3-yaml; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "$what" = all ]; then
  for pkg in chromium; do dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg"); done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$TOOLS/bin/minio" ] || [ "$(cat "$TOOLS/minio.version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
  log "building MinIO $MINIO_VERSION from the Go module proxy (first time: several minutes)"
  (cd /tmp && GOFLAGS=-buildvcs=false GOBIN="$TOOLS/bin" go install "github.com/minio/minio@$MINIO_VERSION")
  echo "$MINIO_VERSION" > "$TOOLS/minio.version"
fi

if [ "$what" = all ] && [ -x jupyter-ext/setup.sh ]; then
  jupyter-ext/setup.sh
fi
log "ready"
