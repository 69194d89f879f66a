#!/usr/bin/env bash
# make demo: the product's front door. On a fresh Debian 12 machine, as root,
# with nothing in /etc: installs what it needs, starts MinIO with sample
# data, starts s3mountd with its config under .demo/, drops connectors, and
# starts JupyterLab with the S3 Mounts panel. Ctrl-C (or SIGTERM) tears
# everything down: no mount, no process left.
#
# One demo per checkout: .demo.lock (flock, holding the demo's pid) makes a
# second `make demo` beside a running one refuse at once, touching nothing.
# Each start wipes .demo except .demo/mnt: JupyterLab's root directory, where
# the notebooks you create stay from one demo to the next.
# Ports are free ones picked at random, so demos of two checkouts do not
# collide; JupyterLab's is DEMO_PORT if set, else 8888 when free.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
D=$ROOT/.demo
LOCK=$ROOT/.demo.lock
say() { printf '[demo] %s\n' "$*" >&2; }

# Pids (other than this one) that hold the lock file open.
lock_holders() {
  local p f
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    for f in "$p"/fd/*; do
      if [[ $f -ef $LOCK ]]; then echo "${p#/proc/}"; break; fi
    done 2>/dev/null
  done
}

# 1. One demo per checkout. The lock is taken before anything is built,
# started or removed. Opened read-write so the running demo's pid survives.
exec 9<>"$LOCK"
if ! flock -n 9; then
  pid=$(head -c 32 "$LOCK" | tr -dc 0-9)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    say "a demo is already running from this checkout (pid $pid); this one stops here and changes nothing."
    say "stop the running one first: Ctrl-C in its terminal, or  kill $pid  (it unmounts and stops all it started)"
  else
    holders=$(lock_holders | tr '\n' ' ')
    say "the demo lock $LOCK is held by pid(s) ${holders:-?} although the demo (pid ${pid:-?}) is gone."
    say "stop them with  kill $holders and run make demo again"
  fi
  exit 1
fi
echo "$$" > "$LOCK"

# Processes an earlier demo of this checkout left running (it was killed
# with SIGKILL): started from this checkout and naming .demo/ in their argv.
leftovers() {
  local p pid a x
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    a=()
    mapfile -d "" a 2>/dev/null < "$p/cmdline" || continue
    [ ${#a[@]} -gt 0 ] || continue
    case "${a[0]} ${a[1]:-}" in
      "$ROOT"/*|*" $ROOT"/*|bin/*|.tools/*|*" scripts/"*|"$D"/*) ;;
      *) continue ;;
    esac
    for x in "${a[@]}"; do
      case $x in *"$D/"*) echo "$pid"; break ;; esac
    done
  done
}
stop_pids() { # TERM, then KILL what is still there after 15 s
  local p i
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for i in $(seq 150); do
    for p in "$@"; do kill -0 "$p" 2>/dev/null && break; p=; done
    [ -z "$p" ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}
unmount_all() { # anything still mounted under .demo/mnt: detach it
  { grep -F " $D/mnt/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
mapfile -t old < <(leftovers)
if [ ${#old[@]} -gt 0 ]; then
  say "stopping what an earlier demo of this checkout left running (pids ${old[*]})"
  stop_pids "${old[@]}"
fi
unmount_all

# 2. Ports, checked before anything starts.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }
if [ -n "${DEMO_PORT:-}" ]; then
  if ! port_free "$DEMO_PORT"; then
    say "DEMO_PORT=$DEMO_PORT is in use on 127.0.0.1 (another JupyterLab?): choose another, or unset DEMO_PORT to take a free one"
    exit 1
  fi
elif port_free 8888; then
  DEMO_PORT=8888
else
  DEMO_PORT=$(free_port)
fi

# 3. Tools and binaries.
scripts/setup.sh
make --no-print-directory build >/dev/null

# 4. A fresh .demo, except mnt/ (JupyterLab's root: the user's notebooks).
mkdir -p "$D"
find "$D" -mindepth 1 -maxdepth 1 ! -name mnt -exec rm -rf --one-file-system {} +
mkdir -p "$D"/{etc/connectors.d,etc/secrets,state,cache,run,mnt/s3,minio,sample,log}
chmod 700 "$D/etc/secrets" "$D/state" "$D/run"

MINIO_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$MINIO_PORT
MINIO_USER=demo-admin
MINIO_SECRET=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

STOPPING=
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  say "stopping"
  set +e
  if [ -n "${JUPYTER_PID:-}" ]; then kill -TERM "$JUPYTER_PID" 2>/dev/null; wait "$JUPYTER_PID" 2>/dev/null; fi
  if [ -n "${AGENT_PID:-}" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
  fi
  unmount_all   # anything the agent could not unmount (it should have)
  if [ -n "${MINIO_PID:-}" ]; then kill -TERM "$MINIO_PID" 2>/dev/null; wait "$MINIO_PID" 2>/dev/null; fi
  mapfile -t rest < <(leftovers)
  [ ${#rest[@]} -gt 0 ] && { say "stopping leftovers (pids ${rest[*]})"; stop_pids "${rest[@]}"; }
  mounts=$(grep -cF " $D/mnt/" /proc/self/mounts)
  mapfile -t rest < <(leftovers)
  if [ "${mounts:-0}" -eq 0 ] && [ ${#rest[@]} -eq 0 ]; then
    say "stopped: no mount and no process left"
  else
    say "stopped, but left: ${mounts:-0} mount(s) under $D/mnt, process(es) ${rest[*]:-none}"
  fi
  [ -n "$STOPPING" ] && exit 0
  exit "$rc"
}
trap cleanup EXIT
trap 'STOPPING=1; exit 0' INT TERM

# Long-running children get their own session (Ctrl-C reaches only this
# script, which stops them in order) and do not hold the demo lock (fd 9).
say "starting MinIO on $ENDPOINT"
MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_SECRET MINIO_BROWSER=off MINIO_UPDATE=off \
  setsid .tools/bin/minio server --quiet --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$(free_port)" \
  "$D/minio" >"$D/log/minio.log" 2>&1 9>&- &
MINIO_PID=$!
for i in $(seq 1200); do   # ~2 s idle; minutes on a loaded machine
  curl -fs "$ENDPOINT/minio/health/live" >/dev/null 2>&1 && break
  kill -0 "$MINIO_PID" 2>/dev/null || { say "MinIO exited at start; its log ($D/log/minio.log):"; tail -n 20 "$D/log/minio.log" >&2; exit 1; }
  [ "$i" = 1200 ] && { say "MinIO did not answer within 2 min; its log: $D/log/minio.log"; exit 1; }
  [ $((i % 200)) = 0 ] && say "still waiting for MinIO to answer ($((i / 10)) s)"
  sleep 0.1
done

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
seed() {
  "$D/s3seed" -endpoint "$ENDPOINT" -access-key "$MINIO_USER" "$@" >/dev/null ||
    { say "seeding MinIO failed (s3seed $*); MinIO's log: $D/log/minio.log"; exit 1; }
}
seed -bucket demo-data -dir "$D/sample"
seed -bucket demo-data -generate 10000 -prefix many/
seed -bucket demo.dotted -dir "$D/sample/tables" -prefix tables/
seed -bucket demo-scratch -dir "$D/sample/tables"
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
setsid bin/s3mountd --config "$D/etc/agent.toml" --runtime-dir "$D/run" >"$D/log/s3mountd.log" 2>&1 9>&- &
AGENT_PID=$!
for i in $(seq 1200); do
  [ -S "$D/run/agent.sock" ] && break
  kill -0 "$AGENT_PID" 2>/dev/null || { say "s3mountd exited at start; its log ($D/log/s3mountd.log):"; tail -n 20 "$D/log/s3mountd.log" >&2; exit 1; }
  [ "$i" = 1200 ] && { say "s3mountd did not open its socket within 2 min; its log: $D/log/s3mountd.log"; exit 1; }
  sleep 0.1
done
CTL="bin/s3mountctl --socket $D/run/agent.sock"

connector datasets   "Demo datasets"          demo-data    datasets   ro default
connector scratch    "Scratch space (rw)"     demo-scratch scratch    rw default
connector datasets-s3fs "Demo datasets via s3fs" demo-data datasets-s3fs ro s3fs
connector dotted     "Bucket with a dot"      demo.dotted  dotted     ro default
say "mounting 4 connectors"
for i in $(seq 600); do
  n=$($CTL --json list 2>/dev/null | python3 -c 'import json,sys; print(sum(c["state"]=="mounted" for c in json.load(sys.stdin)["connectors"]))' 2>/dev/null || echo 0)
  [ "$n" -ge 4 ] && break
  [ "$i" = 600 ] && say "not every connector mounted within 2 min; their states:"
  sleep 0.2
done
$CTL list || true
echo
say "files of $D/mnt/s3/datasets:"
ls -l "$D/mnt/s3/datasets" || true
say "head of tables/iris.csv:"
head -3 "$D/mnt/s3/datasets/tables/iris.csv" || true

say "starting JupyterLab on 127.0.0.1:$DEMO_PORT"
: > "$D/log/jupyter-url"
S3MOUNTS_SETUP_DONE=1 setsid scripts/demo-jupyter.sh "$D/run/agent.sock" "$D/mnt/s3" "$DEMO_PORT" "$D" >"$D/log/jupyter-url" 9>&- &
JUPYTER_PID=$!
until grep -q '^JupyterLab: ' "$D/log/jupyter-url"; do
  kill -0 "$JUPYTER_PID" 2>/dev/null || { say "JupyterLab did not start (see above and $D/jupyter/jupyter.log)"; exit 1; }
  sleep 0.2
done

say "running; Ctrl-C (or kill $$) stops it and unmounts everything. Notebooks you save in JupyterLab's root ($D/mnt/s3) stay for the next demo."
SOCK=$D/run/agent.sock
cat <<EOF

Mounts: $D/mnt/s3
Socket: $SOCK
$(grep -m1 '^JupyterLab: ' "$D/log/jupyter-url")

export S3MOUNTS_SOCKET=$SOCK
try:
  $ROOT/bin/s3mountctl list
  $ROOT/bin/s3mountctl ls datasets tables
  ls $D/mnt/s3/datasets/many | head

EOF

# Wait for a signal (the trap tears down) or for a part to end by itself.
set +e
wait -n -p ended "$AGENT_PID" "$JUPYTER_PID"
status=$?
set -e
if [ "${ended:-}" = "$AGENT_PID" ]; then
  say "s3mountd exited unexpectedly (status $status); its log: $D/log/s3mountd.log"
  tail -n 20 "$D/log/s3mountd.log" >&2
else
  say "JupyterLab exited unexpectedly (status $status); its log: $D/jupyter/jupyter.log"
  tail -n 20 "$D/jupyter/jupyter.log" >&2
fi
exit 1
