#!/usr/bin/env bash
# bench/flat_out.sh TAG: one flat-out order_payment run (64 clients, 20 s) on a private cluster of this
# checkout, printing throughput and CPU per order. Flat-out numbers drift by about +-20% here between
# runs minutes apart: compare two checkouts by alternating this script between them (docs/BENCHMARKS.md).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python; RUN_ID=$1; STATE=.local/bench-$RUN_ID; OFFSET=$(( (RANDOM % 14 + 10) * 1000 ))
for p in GATEWAY BALANCE CATALOG COUPON ORDER RANKING; do export ${p}_ACCESS_LOG=false; done
$PY deploy/cluster.py --state-dir "$STATE" up --detach --no-seed --port-offset "$OFFSET" --topic-prefix "bench$RUN_ID." --db-suffix "bench$RUN_ID" >/dev/null 2>&1 || { echo up failed; exit 1; }
$PY -m bench order_payment --cluster-state "$STATE/cluster.json" --duration 20 --concurrency 64 --tag "flat-$RUN_ID" 2>&1 | grep -E "completed/s|CPU over|postgres |order-0 " | head -5
$PY deploy/cluster.py --state-dir "$STATE" down >/dev/null 2>&1; rm -rf "$STATE"
