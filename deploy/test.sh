#!/usr/bin/env bash
# README's test command: sets up the Python environment if needed, then runs pytest.
# PostgreSQL and Kafka come from TEST_PG_DSN/TEST_KAFKA_BOOTSTRAP, else testcontainers (when a
# Docker engine answers), else the local servers of deploy/infra.sh, started on demand.
# Extra arguments go to pytest, e.g. `deploy/test.sh tests/shared -x`.
set -Eeuo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
deploy/venv.sh
exec .venv/bin/pytest "$@"
