#!/usr/bin/env bash
# make demo: the product's front door. On a fresh Debian 12 machine, as root,
# with nothing in /etc: installs what it needs, starts MinIO with sample
# data, starts s3mountd with its config under .demo/, drops connectors, and
# starts JupyterLab with the S3 Mounts panel. Ctrl-C (or SIGTERM) tears
# everything down: no mount, no process left.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
D=$ROOT/.demo
DEMO_PORT=${DEMO_PORT:-8888}
say() { printf '[demo] %s\n' "$*" >&2; }

scripts/setup.sh
make --no-print-directory build >/dev/null

# A previous demo killed hard may have left mounts behind: clean them.
if [ -d "$D/mnt" ]; then
  { grep -F " $D/mnt/" /proc/self/mounts || true; } | awk '{print $2}' | while read -r m; do umount -l "$m" 2>/dev/null || true; done
fi
rm -rf "$D"
mkdir -p "$D"/{etc/connectors.d,etc/secrets,state,cache,run,mnt/s3,minio,sample,log}
chmod 700 "$D/etc/secrets" "$D/state" "$D/run"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MINIO_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$MINIO_PORT
MINIO_USER=demo-admin
MINIO_SECRET=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  set +e
  if [ -n "${JUPYTER_PID:-}" ]; then kill "$JUPYTER_PID" 2>/dev/null; wait "$JUPYTER_PID" 2>/dev/null; fi
  if [ -n "${AGENT_PID:-}" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
  fi
  # Anything the agent could not unmount (it should have): detach it.
  { grep -F " $D/mnt/" /proc/self/mounts || true; } | awk '{print $2}' | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  left=$(grep -cF " $D/mnt/" /proc/self/mounts || true)
  say "stopped (mounts left: ${left:-0})"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

say "starting MinIO on $ENDPOINT"
MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_SECRET MINIO_BROWSER=off \
  .tools/bin/minio server --quiet --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$(free_port)" "$D/minio" >"$D/log/minio.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "$ENDPOINT/minio/health/live" >/dev/null 2>&1 && break; sleep 0.1; done

say "uploading sample data (CSV, JSON, Parquet, images, a folder of 10,000 objects, a bucket with a dot)"
go run ./internal/tools/sampledata "$D/sample"
PY=jupyter-ext/.venv/bin/python
if [ -x "$PY" ] && "$PY" -c 'import pyarrow' 2>/dev/null; then
  "$PY" - "$D/sample" <<'PYEOF'
import sys, pyarrow.csv as pc, pyarrow.parquet as pq
t = pc.read_csv(sys.argv[1] + "/tables/iris.csv")
pq.write_table(t, sys.argv[1] + "/tables/iris.parquet")
PYEOF
fi
export S3SEED_SECRET=$MINIO_SECRET
go build -o "$D/s3seed" ./internal/tools/s3seed
"$D/s3seed" -endpoint "$ENDPOINT" -access-key "$MINIO_USER" -bucket demo-data -dir "$D/sample" >/dev/null
"$D/s3seed" -endpoint "$ENDPOINT" -access-key "$MINIO_USER" -bucket demo-data -generate 10000 -prefix many/ >/dev/null
"$D/s3seed" -endpoint "$ENDPOINT" -access-key "$MINIO_USER" -bucket demo.dotted -dir "$D/sample/tables" -prefix tables/ >/dev/null
"$D/s3seed" -endpoint "$ENDPOINT" -access-key "$MINIO_USER" -bucket demo-scratch -dir "$D/sample/tables" >/dev/null
unset S3SEED_SECRET

# The secret is a named secret: a 0600 file in secrets_dir.
umask 077
printf '%s\n' "$MINIO_SECRET" > "$D/etc/secrets/demo-minio"
umask 022
cat > "$D/etc/agent.toml" <<TOML
project_root   = "$D/mnt/s3"
connectors_dir = "$D/etc/connectors.d"
socket         = "$D/run/agent.sock"
socket_group   = "root"
secrets_dir    = "$D/etc/secrets"
state_dir      = "$D/state"
cache_dir      = "$D/cache"
mount_uid      = 0
mount_gid      = 0
TOML

connector() { # id name bucket mount_name mode backend [prefix]
  cat > "$D/etc/connectors.d/.$1.tmp" <<TOML
name        = "$2"
description = "s3mounts demo: $3 ($5, $6 backend)"
endpoint    = "$ENDPOINT"
bucket      = "$3"
prefix      = "${7:-}"
mount_name  = "$4"
mode        = "$5"
backend     = "$6"
active      = true
addressing  = "path"
created_by  = "demo"

[credentials]
access_key_id = "$MINIO_USER"
secret_name   = "demo-minio"
TOML
  mv "$D/etc/connectors.d/.$1.tmp" "$D/etc/connectors.d/$1.toml"   # atomic drop, as a control plane would
}

say "starting s3mountd"
bin/s3mountd --config "$D/etc/agent.toml" --runtime-dir "$D/run" >"$D/log/s3mountd.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do [ -S "$D/run/agent.sock" ] && break; sleep 0.1; done
CTL="bin/s3mountctl --socket $D/run/agent.sock"

connector datasets   "Demo datasets"          demo-data    datasets   ro default
connector scratch    "Scratch space (rw)"     demo-scratch scratch    rw default
connector datasets-s3fs "Demo datasets via s3fs" demo-data datasets-s3fs ro s3fs
connector dotted     "Bucket with a dot"      demo.dotted  dotted     ro default
for _ in $(seq 100); do
  n=$($CTL --json list 2>/dev/null | python3 -c 'import json,sys; print(sum(c["state"]=="mounted" for c in json.load(sys.stdin)["connectors"]))' 2>/dev/null || echo 0)
  [ "$n" -ge 4 ] && break; sleep 0.2
done
$CTL list || true
echo
say "files of $D/mnt/s3/datasets:"
ls -l "$D/mnt/s3/datasets" || true
say "head of tables/iris.csv:"
head -3 "$D/mnt/s3/datasets/tables/iris.csv" || true

echo
echo "Mounts: $D/mnt/s3"
echo "Socket: $D/run/agent.sock"
if [ -x scripts/demo-jupyter.sh ]; then
  scripts/demo-jupyter.sh "$D/run/agent.sock" "$D/mnt/s3" "$DEMO_PORT" "$D" &
  JUPYTER_PID=$!
fi
say "try: $CTL list | $CTL ls datasets tables | ls $D/mnt/s3/datasets/many | head"
say "running; Ctrl-C to stop and unmount everything"
while kill -0 "$AGENT_PID" 2>/dev/null; do sleep 1; done
say "s3mountd exited (see $D/log/s3mountd.log)"
