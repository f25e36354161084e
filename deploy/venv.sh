#!/usr/bin/env bash
# Creates or refreshes .venv from pyproject.toml and requirements.lock (only when they changed).
# Checks the Python version first; a .venv left half-made (an interrupted first run: no working
# python or pip inside) is removed and made again. pip shows what it installs (minutes on a
# first run), so a fresh machine does not look stuck.
set -Eeuo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "[venv] $PYTHON not found: Python 3.11+ is required" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "[venv] Python 3.11+ is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
stamp=".venv/.installed"
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
if [[ -e .venv ]] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "[venv] .venv is incomplete (an interrupted install?): making it again" >&2
    rm -rf .venv
fi
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv ||
        { echo "[venv] could not create .venv (Debian/Ubuntu: apt-get install python3-venv)" >&2; rm -rf .venv; exit 1; }
fi
echo "[venv] installing the project and its pinned dependencies into .venv (first run: a few minutes)" >&2
.venv/bin/pip install -q --upgrade pip
set +o pipefail
.venv/bin/pip install -c requirements.lock -e '.[dev]' 2>&1 |
    grep --line-buffered -E '^(Collecting|Successfully installed|ERROR|error)' | sed -u 's/^/[venv] /' >&2
status="${PIPESTATUS[0]}"
set -o pipefail
[[ "$status" == 0 ]] || { echo "[venv] pip install failed (exit $status); run deploy/venv.sh again" >&2; exit 1; }
# the stamp only after a complete install (a failure above leaves none, so the next run repairs)
.venv/bin/python -c 'import shared, gateway, aiokafka, asyncpg' ||
    { echo "[venv] the install did not complete; run deploy/venv.sh again" >&2; exit 1; }
echo "$want" >"$stamp"
