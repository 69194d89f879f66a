#!/usr/bin/env bash
# Installs what the JupyterLab extension needs into jupyter-ext/.venv, from
# lock files: Python packages pinned in requirements.lock (uv), node packages
# from package-lock.json (npm ci); builds the labextension and the wheel and
# installs the wheel into the venv. Idempotent: each step is skipped when its
# inputs (hashed) have not changed since it last ran.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
VENV=$HERE/.venv
UV_VERSION=0.13.9
log() { printf '[jupyter-ext setup] %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-32; }
stamp_ok() { [ -f "$VENV/.stamp-$1" ] && [ "$(cat "$VENV/.stamp-$1")" = "$2" ]; }
stamp_set() { echo "$2" > "$VENV/.stamp-$1"; }
# quiet CMD...: runs CMD, shows its output only when it fails.
quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; log "failed: $*"; return 1; }; }

command -v node >/dev/null || { log "node is required (Debian: apt-get install nodejs npm)"; exit 1; }

# 1. The venv and the pinned Python packages.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $(command -v python3) ($(python3 --version))"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -qF "$UV_VERSION"; then
  log "installing uv $UV_VERSION into the venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
h=$(hash_of requirements.lock)
if ! stamp_ok pydeps "$h"; then
  log "installing Python packages from requirements.lock"
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r requirements.lock
  stamp_set pydeps "$h"
fi

# 2. Node packages, exactly as locked.
h=$(hash_of package-lock.json)
if [ ! -d node_modules ] || ! stamp_ok npm "$h"; then
  log "npm ci"
  quiet npm ci --no-audit --no-fund --loglevel=error
  stamp_set npm "$h"
fi

# 3. The labextension (TypeScript -> lib/ -> webpack), only when sources changed.
export PATH="$VENV/bin:$PATH"
h=$(hash_of package.json tsconfig.json $(find src style schema -type f -not -path '*/__tests__/*' | sort))
if ! stamp_ok labext "$h" || [ ! -f jupyterlab_s3mounts/labextension/static/style.js ]; then
  log "building the labextension"
  rm -rf lib tsconfig.tsbuildinfo jupyterlab_s3mounts/labextension
  quiet npx tsc --sourceMap
  quiet jupyter-builder build .   # what `jupyter labextension build` now defers to
  stamp_set labext "$h"
fi

# 4. The wheel, installed into the venv like any user would.
h=$(hash_of pyproject.toml install.json $(find jupyterlab_s3mounts jupyter-config -type f -not -name '*.pyc' | sort))
if ! stamp_ok wheel "$h" || ! "$VENV/bin/python" -c 'import jupyterlab_s3mounts' 2>/dev/null; then
  log "building and installing the wheel"
  rm -rf dist
  out=$("$VENV/bin/python" -m build --wheel --no-isolation -o dist . 2>&1) || { echo "$out" >&2; exit 1; }
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --reinstall --no-deps dist/jupyterlab_s3mounts-*.whl
  stamp_set wheel "$h"
fi

# 5. Check that JupyterLab sees both halves (once per installed wheel).
if ! stamp_ok checked "$h"; then
  out=$(jupyter labextension list 2>&1 || true)
  if ! grep -q 'jupyterlab-s3mounts.*enabled.*OK' <<<"$out"; then
    log "jupyter labextension list does not show jupyterlab-s3mounts enabled OK:"; echo "$out" >&2; exit 1
  fi
  out=$(jupyter server extension list 2>&1 || true)
  if ! grep -q 'jupyterlab_s3mounts.*OK' <<<"$out"; then
    log "jupyter server extension list does not show jupyterlab_s3mounts OK:"; echo "$out" >&2; exit 1
  fi
  stamp_set checked "$h"
fi
log "ready: $(ls dist/*.whl)"
