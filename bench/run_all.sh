#!/usr/bin/env bash
# Start a private cluster (deploy/cluster.py: own ports, topics, databases), run the pgbench floor
# and every scenario against it, stop it and drop its databases.
#
#   bench/run_all.sh                       # one instance of each service, 20 s per scenario
#   INSTANCES=order=2,coupon=2 DURATION=30 RATE=200 bench/run_all.sh
#
# Closed-loop concurrency per scenario: a p95 target is a statement about a load level, and by
# Little's law a closed loop's latency is concurrency / throughput. The defaults are the levels
# the targets were measured at (docs/BENCHMARKS.md): 64 order clients, 32 charging clients,
# 16 readers.
# Access logs are off for benchmarks (<P>_ACCESS_LOG=false); results land in bench/results/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUN_ID=${RUN_ID:-$(date +%s | tail -c 6)}
STATE=.local/bench-$RUN_ID
INSTANCES=${INSTANCES:-}   # e.g. order=2: on 2 cores one of each is fastest (docs/BENCHMARKS.md)
DURATION=${DURATION:-20}
RATE=${RATE:-200}          # the target's "half of 400/s"
LOW_RATE=${LOW_RATE:-20}   # well inside what this box sustains
CONCURRENCY=${CONCURRENCY:-64}          # order_payment flat out
CHARGE_CONCURRENCY=${CHARGE_CONCURRENCY:-32}
READ_CONCURRENCY=${READ_CONCURRENCY:-16}
OFFSET=${OFFSET:-$(( (RANDOM % 14 + 10) * 1000 ))}
for p in GATEWAY BALANCE CATALOG COUPON ORDER RANKING; do export ${p}_ACCESS_LOG=false; done

cleanup() {
  "$PY" deploy/cluster.py --state-dir "$STATE" down >/dev/null 2>&1
  "$PY" - "$STATE" "bench$RUN_ID" <<'PYEOF'
import asyncio, json, sys, pathlib
import asyncpg
state, suffix = pathlib.Path(sys.argv[1]), sys.argv[2]
info = json.loads((state / "cluster.json").read_text()) if (state / "cluster.json").exists() else None
async def drop():
    conn = await asyncpg.connect(info["pg_admin_dsn"])
    for row in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"%\\_{suffix}"):
        await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    await conn.close()
if info:
    asyncio.run(drop())
PYEOF
  rm -rf "$STATE"
}
trap cleanup EXIT

"$PY" deploy/cluster.py --state-dir "$STATE" up --detach --no-seed --instances "$INSTANCES" \
  --port-offset "$OFFSET" --topic-prefix "bench$RUN_ID." --db-suffix "bench$RUN_ID" || exit 1
CS="$STATE/cluster.json"
rc=0
"$PY" -m bench order_payment --cluster-state "$CS" --duration "$DURATION" --rate "$LOW_RATE" --tag "lowrate-$RUN_ID" || rc=1
"$PY" -m bench order_payment --cluster-state "$CS" --duration "$DURATION" --rate "$RATE" --tag "rate-$RUN_ID" || rc=1
"$PY" -m bench order_payment --cluster-state "$CS" --duration "$DURATION" --concurrency "$CONCURRENCY" --floor --tag "flat-$RUN_ID" || rc=1
"$PY" -m bench coupon_spike --cluster-state "$CS" --users 2000 --quantity 1000 --tag "$RUN_ID" || rc=1
"$PY" -m bench balance_charge --cluster-state "$CS" --duration "$DURATION" --concurrency "$CHARGE_CONCURRENCY" --tag "$RUN_ID" || rc=1
"$PY" -m bench top_products --cluster-state "$CS" --duration "$DURATION" --concurrency "$READ_CONCURRENCY" --tag "$RUN_ID" || rc=1
"$PY" -m bench summary --tag "$RUN_ID"
exit $rc
