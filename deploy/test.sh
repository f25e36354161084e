#!/usr/bin/env bash
# README's test command: sets up the Python environment if needed, runs the static gates (ruff,
# ruff format, mypy), then pytest. PostgreSQL and Kafka come from TEST_PG_DSN/TEST_KAFKA_BOOTSTRAP,
# else testcontainers (when a Docker engine answers), else the local servers of deploy/infra.sh,
# started on demand.
#
#   deploy/test.sh                    # gates + every test (what CI runs)
#   deploy/test.sh -m unit            # the edit-test loop: tests that need no server (~20 s)
#   deploy/test.sh tests/shared -x    # extra arguments go to pytest; the gates are skipped
#   GATES=1 deploy/test.sh -m unit    # ... unless asked for
set -Eeuo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
deploy/venv.sh
if [[ $# -eq 0 || "${GATES:-0}" == 1 ]]; then
    echo "[test] ruff check" >&2
    .venv/bin/ruff check --quiet .
    echo "[test] ruff format --check" >&2
    .venv/bin/ruff format --check --quiet .
    echo "[test] mypy (strict on shared/, gateway/ and the domains)" >&2
    .venv/bin/mypy
fi
exec .venv/bin/pytest "$@"
