#!/usr/bin/env bash
# Creates or refreshes .venv from pyproject.toml and requirements.lock (only when they changed).
set -Eeuo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "Python 3.11+ is required (found $("$PYTHON" --version))" >&2; exit 1; }
stamp=".venv/.installed"
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
echo "[venv] installing the project into .venv" >&2
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -c requirements.lock -e '.[dev]'
echo "$want" >"$stamp"
