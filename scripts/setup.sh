#!/usr/bin/env bash
# Idempotent setup: .venv (pip, pinned), npm toolchain in .tools/ (anvil, cast, solc-js, js-ipfs).
# Each step is skipped when a stamp matching the hash of its inputs exists, so a second run takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# pip, quietly: setuptools' editable-install notices and notes about local index folders that do not exist on this
# machine are not errors; everything else (and the exit status) comes through.
pip_quiet() {
  PYTHONWARNINGS=ignore .venv/bin/python -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}

# --- Python virtual environment -------------------------------------------------
PY_STAMP=".venv/.fedledger-stamp"
PY_HASH="$(hash_of pyproject.toml scripts/setup.sh)"
if [[ ! -f "$PY_STAMP" || "$(cat "$PY_STAMP")" != "$PY_HASH" ]]; then
  echo "[setup] creating/updating .venv (first run installs torch CPU, a few minutes)"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  pip_quiet install -q --upgrade pip >/dev/null
  # torch first and pinned, so no resolver ever reaches for a CUDA build.
  pip_quiet install -q "torch==2.13.0"
  pip_quiet install -q -e ".[dev]"
  echo "$PY_HASH" > "$PY_STAMP"
fi

# --- npm toolchain (anvil, cast, solc-js, js-ipfs) --------------------------------
NPM_STAMP=".tools/.fedledger-stamp"
NPM_HASH="$(hash_of devnet/toolchain/package.json)"
if [[ ! -f "$NPM_STAMP" || "$(cat "$NPM_STAMP")" != "$NPM_HASH" ]]; then
  echo "[setup] installing npm toolchain into .tools/ (anvil, cast, solc-js, js-ipfs)"
  mkdir -p .tools
  cp devnet/toolchain/package.json .tools/package.json
  [[ -f devnet/toolchain/package-lock.json ]] && cp devnet/toolchain/package-lock.json .tools/package-lock.json
  (cd .tools && npm install --omit=optional --no-audit --no-fund --loglevel=error)
  echo "$NPM_HASH" > "$NPM_STAMP"
fi

# --- headless Chromium (the HTML audit report's browser test) ---------------------
if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian chromium (for the report's browser test)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "[setup] chromium could not be installed; the browser test will be skipped"
  else
    echo "[setup] chromium not found and not root: the report's browser test will be skipped"
  fi
fi
