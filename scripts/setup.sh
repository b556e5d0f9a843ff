#!/usr/bin/env bash
# Sets up a fresh machine for Illustra: Debian packages (Open Clip Art demo data, Chromium for the
# browser tests) and a virtual environment in .venv with the CPU build of torch and everything else.
# Safe to run again: each step checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Open Clip Art packages are installed here and only here: `illustra demo` installs nothing,
# and without them it says in one line what to run.
need_apt=()
[[ -d /usr/share/openclipart/png ]] || need_apt+=(openclipart-png)
[[ -d /usr/share/openclipart/svg ]] || need_apt+=(openclipart-svg)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install Debian packages: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.illustra-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing Python packages (CPU torch first, so nothing pulls a CUDA build)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev,ray,milvus]"
  touch "$stamp"
fi
# axe-core for the browser tests' accessibility checks (package.json, pinned by package-lock.json).
if [[ ! -f node_modules/axe-core/axe.min.js || package-lock.json -nt node_modules/.package-lock.json ]]; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing npm packages for the browser tests"
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "setup: please install node and npm (the browser tests need axe-core from npm)" >&2
    exit 1
  fi
fi
echo "setup: ready"
