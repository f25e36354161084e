"""Invariant checks after a run, through the API and the services' databases.

    problems = await check_invariants(".local/bench-x/cluster.json", load.run_data())
    assert problems == [], problems

``cluster`` is the path of a ``deploy/cluster.py`` state file (``cluster.json``: DSNs from each
process's ``<P>_DATABASE_URL``, the topic prefix, the Kafka bootstrap, the gateway URL) or a
``Targets`` (explicit DSNs). ``run`` is a ``bench.load.RunData`` (or its ``to_dict()``).

Checked, each problem one string (empty list = all hold):
- settle: every order of the run's users ends COMPLETED or FAILED (waits up to ``settle_timeout``,
  then reports each order still PENDING); a completed coupon order's coupon is confirmed (USED).
- money, per user: charged by the run = balance + paid - refunded (from ``balance_history``),
  history sums match the balance, and USE - REFUND = the paid amounts of the user's COMPLETED orders;
  the money held by orders in flight is the sum of the orders' holds, within the limit with the
  balance, and drains to 0 once every order is final.
- stock, per product: stock + sold (quantities of COMPLETED orders' lines) = initial; the catalog's
  own record of what DEDUCTED orders took agrees.
- coupons: issued <= total, no user holds one coupon twice, no user coupon used by two completed orders.
- failed orders left no effect: no standing deduction (order_payments not DEDUCTED), no stock taken
  (order_stock not DEDUCTED), their coupon not RESERVED/USED for them.
- Kafka (``<prefix>order.completed``): one event per completed order; orders whose event is missing,
  orders with events of several event ids (``kafka: duplicate order``), the same event id delivered
  more than once (``kafka: redelivered event-id``: allowed by at-least-once; reported unless
  ``allow_redelivery``), events for orders that are not COMPLETED.
- API agrees with the databases for every user's balance and every product's stock.

Stable API: ``check_invariants``, ``Targets``, ``Targets.from_cluster``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.load import Api, RunData


@dataclass
class Targets:
    balance_dsn: str
    catalog_dsn: str
    coupon_dsn: str
    order_dsn: str
    kafka_bootstrap: str | None = None
    topic_prefix: str = ""
    gateway_url: str | None = None

    @classmethod
    def from_cluster(cls, path: str | Path) -> Targets:
        info = json.loads(Path(path).read_text())
        dsn: dict[str, str] = {}
        for proc in info["procs"]:
            for key, value in proc["env"].items():
                if key.endswith("_DATABASE_URL"):
                    dsn.setdefault(proc["service"], value)
        return cls(
            dsn["balance"],
            dsn["catalog"],
            dsn["coupon"],
            dsn["order"],
            info.get("kafka_bootstrap"),
            info.get("topic_prefix", ""),
            info.get("gateway_url"),
        )


async def check_invariants(
    cluster: str | Path | Targets | dict[str, Any],
    run: RunData | dict[str, Any],
    *,
    settle_timeout: float = 30.0,
    check_kafka: bool = True,
    allow_redelivery: bool = False,
    check_api: bool = True,
    kafka_timeout: float = 20.0,
) -> list[str]:
    """Return every broken invariant as a readable string (empty list = all hold)."""
    if isinstance(cluster, dict):
        targets = Targets(**cluster)
    elif isinstance(cluster, Targets):
        targets = cluster
    else:
        targets = Targets.from_cluster(cluster)
    data = run if isinstance(run, RunData) else RunData.from_dict(run)
    problems: list[str] = []
    users, products = data.user_ids, data.product_ids
    owned = {uc for ids in data.user_coupons.values() for uc in ids}

    order_db = await asyncpg.connect(targets.order_dsn)
    balance_db = await asyncpg.connect(targets.balance_dsn)
    catalog_db = await asyncpg.connect(targets.catalog_dsn)
    coupon_db = await asyncpg.connect(targets.coupon_dsn)
    try:
        # ---- settle: no order of the run's users stays PENDING; coupon confirmations done
        deadline = time.monotonic() + settle_timeout
        while True:
            orders = await order_db.fetch(
                "SELECT order_id::text AS order_id, user_id, status, paid_amount, user_coupon_id, failure_code"
                " FROM orders WHERE user_id = ANY($1::bigint[])",
                users,
            )
            pending = [o["order_id"] for o in orders if o["status"] == "PENDING"]
            used_coupons = [
                o["user_coupon_id"] for o in orders if o["status"] == "COMPLETED" and o["user_coupon_id"] is not None
            ]
            unconfirmed = await coupon_db.fetch(
                "SELECT user_coupon_id FROM user_coupons WHERE user_coupon_id = ANY($1::bigint[]) AND status <> 'USED'",
                used_coupons,
            )
            if (not pending and not unconfirmed) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for oid in pending:
            problems.append(f"settle: order {oid} still PENDING after {settle_timeout:.0f}s")
        for row in unconfirmed:
            problems.append(f"coupon: user coupon {row['user_coupon_id']} of a COMPLETED order is not USED")
        by_id = {o["order_id"]: o for o in orders}
        completed = [o for o in orders if o["status"] == "COMPLETED"]
        failed = [o for o in orders if o["status"] == "FAILED"]
        for rec in data.orders:
            oid = rec.get("order_id")
            if oid and oid not in by_id:
                problems.append(f"orders: order {oid} answered to the client is not in the order database")
            elif oid and rec.get("status") in ("COMPLETED", "FAILED") and by_id[oid]["status"] != rec["status"]:
                problems.append(f"orders: order {oid} answered {rec['status']} but is {by_id[oid]['status']}")

        # ---- money
        paid_by_user: Counter[int] = Counter()
        for o in completed:
            paid_by_user[o["user_id"]] += o["paid_amount"]
        hist = await balance_db.fetch(
            "SELECT user_id, type, sum(amount)::bigint AS total FROM balance_history"
            " WHERE user_id = ANY($1::bigint[]) GROUP BY user_id, type",
            users,
        )
        sums: dict[int, Counter[str]] = defaultdict(Counter)
        for h in hist:
            sums[h["user_id"]][h["type"]] = h["total"]
        balances = {
            r["user_id"]: r["balance"]
            for r in await balance_db.fetch(
                "SELECT user_id, balance FROM balances WHERE user_id = ANY($1::bigint[])", users
            )
        }
        for u in users:
            s, bal, charged = sums[u], balances.get(u), data.charged.get(u, 0)
            if bal is None:
                problems.append(f"money: user {u} has no balance row")
                continue
            if s["CHARGE"] != charged:
                problems.append(f"money: user {u} charged {s['CHARGE']} in history, the run charged {charged}")
            if charged != bal + s["USE"] - s["REFUND"]:
                problems.append(
                    f"money: user {u} charged {charged} != balance {bal} + paid {s['USE']} - refunded {s['REFUND']}"
                )
            if s["USE"] - s["REFUND"] != paid_by_user[u]:
                problems.append(
                    f"money: user {u} paid net {s['USE'] - s['REFUND']} but completed orders total {paid_by_user[u]}"
                )
        problems += await _check_held(balance_db, users, settle_timeout)
        payments = {
            r["order_id"]: r
            for r in await balance_db.fetch(
                "SELECT order_id, status, amount FROM order_payments WHERE order_id = ANY($1::text[])",
                [o["order_id"] for o in orders],
            )
        }
        for o in completed:
            p = payments.get(o["order_id"])
            if p is None or p["status"] != "DEDUCTED" or p["amount"] != o["paid_amount"]:
                problems.append(
                    f"money: COMPLETED order {o['order_id']} paid {o['paid_amount']} but payment is"
                    f" {dict(p) if p else None}"
                )
        for o in failed:
            p = payments.get(o["order_id"])
            if p is not None and p["status"] == "DEDUCTED":
                problems.append(f"failed-effect: FAILED order {o['order_id']} still has a DEDUCTED payment")

        # ---- stock
        sold_rows = await order_db.fetch(
            "SELECT i.product_id, sum(i.quantity)::bigint AS sold FROM order_items i JOIN orders o USING (order_id)"
            " WHERE o.status = 'COMPLETED' AND i.product_id = ANY($1::bigint[]) GROUP BY i.product_id",
            products,
        )
        sold = {r["product_id"]: r["sold"] for r in sold_rows}
        stock = {
            r["id"]: r["stock"]
            for r in await catalog_db.fetch("SELECT id, stock FROM products WHERE id = ANY($1::bigint[])", products)
        }
        taken = {
            r["product_id"]: r["taken"]
            for r in await catalog_db.fetch(
                "SELECT l.product_id, sum(l.quantity)::bigint AS taken FROM order_stock_lines l JOIN order_stock s"
                " USING (order_id) WHERE s.status = 'DEDUCTED' AND l.product_id = ANY($1::bigint[])"
                " GROUP BY l.product_id",
                products,
            )
        }
        for p in products:
            initial = data.initial_stock.get(p)
            if p not in stock:
                problems.append(f"stock: product {p} missing")
                continue
            if stock[p] + sold.get(p, 0) != initial:
                problems.append(f"stock: product {p} stock {stock[p]} + sold {sold.get(p, 0)} != initial {initial}")
            if taken.get(p, 0) != sold.get(p, 0):
                problems.append(
                    f"stock: product {p} catalog says DEDUCTED orders took {taken.get(p, 0)},"
                    f" completed orders bought {sold.get(p, 0)}"
                )
        stock_state = {
            r["order_id"]: r["status"]
            for r in await catalog_db.fetch(
                "SELECT order_id, status FROM order_stock WHERE order_id = ANY($1::text[])",
                [o["order_id"] for o in orders],
            )
        }
        for o in failed:
            if stock_state.get(o["order_id"]) == "DEDUCTED":
                problems.append(f"failed-effect: FAILED order {o['order_id']} still holds stock")
        for o in completed:
            if stock_state.get(o["order_id"]) != "DEDUCTED":
                problems.append(
                    f"stock: COMPLETED order {o['order_id']} has stock record {stock_state.get(o['order_id'])}"
                )

        # ---- coupons
        if data.coupon_ids:
            for r in await coupon_db.fetch(
                "SELECT c.coupon_id, c.total_quantity, count(u.user_id) AS issued,"
                " count(DISTINCT u.user_id) AS users FROM coupons c LEFT JOIN user_coupons u USING (coupon_id)"
                " WHERE c.coupon_id = ANY($1::bigint[]) GROUP BY c.coupon_id",
                data.coupon_ids,
            ):
                if r["issued"] > r["total_quantity"]:
                    problems.append(
                        f"coupon: coupon {r['coupon_id']} issued {r['issued']} > total {r['total_quantity']}"
                    )
                if r["users"] != r["issued"]:
                    problems.append(
                        f"coupon: coupon {r['coupon_id']} issued {r['issued']} copies to {r['users']} users"
                    )
        uses = Counter(o["user_coupon_id"] for o in completed if o["user_coupon_id"] is not None)
        for uc, n in uses.items():
            if n > 1:
                problems.append(f"coupon: user coupon {uc} used by {n} COMPLETED orders")
        failed_coupons = [o for o in failed if o["user_coupon_id"] is not None]
        if failed_coupons:
            rows = {
                r["user_coupon_id"]: r
                for r in await coupon_db.fetch(
                    "SELECT user_coupon_id, status, reserved_order_id FROM user_coupons"
                    " WHERE user_coupon_id = ANY($1::bigint[])",
                    [o["user_coupon_id"] for o in failed_coupons],
                )
            }
            for o in failed_coupons:
                r = rows.get(o["user_coupon_id"])
                if r is not None and r["status"] != "AVAILABLE" and r["reserved_order_id"] == o["order_id"]:
                    problems.append(
                        f"failed-effect: FAILED order {o['order_id']} left coupon {o['user_coupon_id']} {r['status']}"
                    )
        for o in orders:
            if o["user_coupon_id"] is not None and owned and o["user_coupon_id"] not in owned:
                problems.append(
                    f"coupon: order {o['order_id']} used user coupon {o['user_coupon_id']} not issued by the run"
                )
    finally:
        for conn in (order_db, balance_db, catalog_db, coupon_db):
            await conn.close()

    # ---- Kafka
    if check_kafka and targets.kafka_bootstrap:
        problems += await _check_completed_events(
            targets,
            {o["order_id"] for o in completed},
            {o["order_id"] for o in orders},
            allow_redelivery,
            kafka_timeout,
        )

    # ---- API agrees with the databases
    gateway = targets.gateway_url or data.gateway_url
    if check_api and gateway:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api, sem = Api(session, gateway), asyncio.Semaphore(16)

            async def one(path: str, key: str, want: int | None, what: str) -> None:
                async with sem:
                    try:
                        body = await api.ok("GET", path)
                    except RuntimeError as exc:
                        problems.append(f"api: {exc}")
                        return
                    if body.get(key) != want:
                        problems.append(f"api: {what} is {body.get(key)} through the API, {want} in the database")

            await asyncio.gather(
                *(one(f"/api/v1/users/{u}/balance", "balance", balances.get(u), f"user {u} balance") for u in users),
                *(one(f"/api/v1/products/{p}", "stock", stock.get(p), f"product {p} stock") for p in products),
            )
    return problems


BALANCE_LIMIT = 10_000_000


async def _check_held(balance_db: asyncpg.Connection, users: list[int], timeout: float) -> list[str]:
    """Money held by orders in flight (``balances.held``, counted toward the limit): always the sum
    of the user's ``order_payments.held`` and within the limit with the balance; once every order
    is final it drains to 0 (the refund, or the consumed ``order.completed``), within ``timeout``."""
    problems: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        rows = await balance_db.fetch(
            "SELECT b.user_id, b.balance, b.held,"
            " (SELECT coalesce(sum(p.held), 0)::bigint FROM order_payments p WHERE p.user_id = b.user_id) AS by_orders"
            " FROM balances b WHERE b.user_id = ANY($1::bigint[])",
            users,
        )
        if all(r["held"] == 0 for r in rows) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    for r in rows:
        if r["held"] != r["by_orders"]:
            problems.append(f"money: user {r['user_id']} holds {r['held']} but its orders hold {r['by_orders']}")
        if r["balance"] + r["held"] > BALANCE_LIMIT:
            problems.append(f"money: user {r['user_id']} balance {r['balance']} + held {r['held']} over the limit")
        if r["held"] != 0:
            problems.append(f"money: user {r['user_id']} still holds {r['held']} after every order is final")
    return problems


async def _check_completed_events(
    targets: Targets, completed: set[str], run_orders: set[str], allow_redelivery: bool, timeout: float
) -> list[str]:
    from aiokafka import AIOKafkaConsumer

    topic = f"{targets.topic_prefix}order.completed"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=targets.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        client_id=f"bench-invariants-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    events: dict[str, Counter[str]] = defaultdict(Counter)  # order_id -> event-id -> deliveries
    problems: list[str] = []
    try:
        tps = sorted(consumer.assignment())
        if not tps:
            return [f"kafka: topic {topic} not found"] if completed else []
        # the relay may still be publishing: wait until every completed order has an event, or the timeout
        deadline = time.monotonic() + timeout
        await consumer.seek_to_beginning(*tps)
        while True:
            end = await consumer.end_offsets(tps)
            while any([await consumer.position(tp) < end[tp] for tp in tps]):
                batch = await consumer.getmany(*tps, timeout_ms=500, max_records=5000)
                for records in batch.values():
                    for msg in records:
                        key = msg.key.decode() if msg.key else ""
                        if key not in run_orders:
                            continue
                        headers = {k: v.decode() for k, v in (msg.headers or [])}
                        event_id = headers.get("event-id") or json.loads(msg.value).get("event_id", "?")
                        events[key][event_id] += 1
            if completed <= events.keys() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    for oid in sorted(completed - events.keys()):
        problems.append(f"kafka: missing order.completed for COMPLETED order {oid}")
    for oid in sorted(events.keys() - completed):
        problems.append(f"kafka: order.completed for order {oid} which is not COMPLETED")
    for oid, ids in sorted(events.items()):
        if len(ids) > 1:
            problems.append(f"kafka: duplicate order {oid}: {len(ids)} distinct event ids")
        if not allow_redelivery:
            for eid, n in ids.items():
                if n > 1:
                    problems.append(f"kafka: redelivered event-id {eid} (order {oid}) {n} times")
    return problems
