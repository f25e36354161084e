#!/usr/bin/env bash
# The one command for the local cluster: PostgreSQL, Kafka, the five services and the gateway,
# seeded with demo data. Ctrl-C stops the services and the gateway (PostgreSQL and Kafka keep
# running for the next start: `deploy/infra.sh down` stops them). Options go to
# `deploy/cluster.py up`, e.g.
#   deploy/run.sh --instances order=2,coupon=2     deploy/run.sh --no-seed --detach
# Stop a detached cluster with: .venv/bin/python deploy/cluster.py down [--all]
set -Eeuo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
deploy/venv.sh
exec .venv/bin/python deploy/cluster.py up "$@"
