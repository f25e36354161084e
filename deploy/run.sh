#!/usr/bin/env bash
# The one command for the local cluster: PostgreSQL, Kafka, the five services and the gateway,
# seeded with demo data. Ctrl-C stops everything. Options go to `deploy/cluster.py up`, e.g.
#   deploy/run.sh --instances order=2,coupon=2     deploy/run.sh --no-seed --detach
# Stop a detached cluster with: .venv/bin/python deploy/cluster.py down [--all]
set -Eeuo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
    .venv/bin/pip install -c requirements.lock -e '.[dev]'
fi
exec .venv/bin/python deploy/cluster.py up "$@"
