#!/usr/bin/env bash
# Starts JupyterLab with the S3 Mounts panel for `make demo`.
#   scripts/demo-jupyter.sh SOCKET PROJECT_ROOT PORT [STATE_DIR]
# The server's root is PROJECT_ROOT (so the mounts are in its file browser
# and "Open" works); the panel talks to the daemon at SOCKET. Prints
# "JupyterLab: http://127.0.0.1:PORT/lab?token=TOKEN" once it answers, and
# runs until SIGTERM/SIGINT, which it passes on.
set -euo pipefail
SOCK=${1:?socket path}
PROJECT_ROOT=${2:?project root}
PORT=${3:-8888}
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${4:-$ROOT/.demo}/jupyter
mkdir -p "$STATE" "$PROJECT_ROOT"
[ -n "${S3MOUNTS_SETUP_DONE:-}" ] || jupyter-ext/setup.sh >&2   # demo.sh has run it already
VENV=$ROOT/jupyter-ext/.venv
TOKEN=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
export JUPYTER_CONFIG_DIR=$STATE/config JUPYTER_RUNTIME_DIR=$STATE/runtime \
  JUPYTERLAB_SETTINGS_DIR=$STATE/settings JUPYTERLAB_WORKSPACES_DIR=$STATE/workspaces
mkdir -p "$STATE/settings/@jupyterlab/apputils-extension"
echo '{"fetchNews": "false"}' > "$STATE/settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
# The token is passed in the environment of this process only (not argv).
export JUPYTER_TOKEN=$TOKEN
"$VENV/bin/jupyter" lab --no-browser --allow-root --ServerApp.ip=127.0.0.1 --port="$PORT" \
  --ServerApp.port_retries=0 --ServerApp.root_dir="$PROJECT_ROOT" --S3Mounts.socket_path="$SOCK" \
  >"$STATE/jupyter.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; exit 0' INT TERM
ready=
for _ in $(seq 3000); do   # seconds idle; minutes on a loaded machine
  if curl -fs "http://127.0.0.1:$PORT/api/status?token=$TOKEN" >/dev/null 2>&1; then
    echo "JupyterLab: http://127.0.0.1:$PORT/lab?token=$TOKEN"
    ready=1
    break
  fi
  kill -0 $PID 2>/dev/null || { echo "JupyterLab did not start; log:" >&2; tail -n 30 "$STATE/jupyter.log" >&2; exit 1; }
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "JupyterLab did not answer on 127.0.0.1:$PORT within 5 min; log: $STATE/jupyter.log" >&2
  kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; exit 1
fi
wait $PID
