"""Rough throughput of POST /orders with the real participants, all in ONE process (pessimistic).

``.venv/bin/python -m tests.order_service.bench_orders [orders] [concurrency]`` against the local
PostgreSQL and Kafka; creates and drops its own databases and uses a private topic prefix.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import asyncpg

from balance_service.app import create_app as balance_app
from balance_service.config import Settings as BalanceSettings
from catalog_service.app import create_app as catalog_app
from catalog_service.config import Settings as CatalogSettings
from coupon_service.app import create_app as coupon_app
from coupon_service.config import Settings as CouponSettings
from order_service.app import create_app as order_app
from order_service.config import Settings as OrderSettings
from tests.order_service.test_saga_real import Cluster

ADMIN = "postgresql://postgres@127.0.0.1:54329/postgres"
BOOTSTRAP = "127.0.0.1:59092"


async def main(total: int, concurrency: int) -> None:
    import aiohttp

    names = {s: f"bench_{s}_{uuid.uuid4().hex[:6]}" for s in ("balance", "catalog", "coupon", "order")}
    admin = await asyncpg.connect(ADMIN)
    for name in names.values():
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = {s: f"postgresql://postgres@127.0.0.1:54329/{n}" for s, n in names.items()}
    common = {
        "kafka_topic_prefix": f"bench{uuid.uuid4().hex[:6]}.",
        "kafka_bootstrap": BOOTSTRAP,
        "port": 0,
        "access_log": False,
        "log_level": "WARNING",
    }
    c = Cluster()
    c.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    try:
        bal = await c.serve("balance", balance_app(BalanceSettings(database_url=dsn["balance"], **common)))
        await c.serve("catalog", catalog_app(CatalogSettings(database_url=dsn["catalog"], **common)))
        await c.serve("coupon", coupon_app(CouponSettings(database_url=dsn["coupon"], balance_url=bal, **common)))
        await c.serve(
            "order",
            order_app(
                OrderSettings(database_url=dsn["order"], balance_url=bal, catalog_url=c.urls["catalog"], **common)
            ),
        )
        products = [await c.product(100, 1_000_000) for _ in range(20)]
        users = [await c.user(1_000_000) for _ in range(concurrency)]
        kinds = [await c.coupon(50, quantity=concurrency) for _ in range(total // 2 // concurrency + 1)]
        wallet = {u: [await c.issue(k, u) for k in kinds] for u in users}
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        queue = list(range(total))

        async def worker(user: int) -> None:
            while queue:
                n = queue.pop()
                uc = wallet[user].pop() if n % 2 and wallet[user] else None
                body = {
                    "user_id": user,
                    "items": [
                        {"product_id": products[n % 20], "quantity": 1},
                        {"product_id": products[(n + 1) % 20], "quantity": 2},
                    ],
                }
                if uc:
                    body["user_coupon_id"] = uc
                started = time.perf_counter()
                status, _ = await c.call("POST", "order", "/api/v1/orders", body)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(u) for u in users))
        took = time.perf_counter() - started
        latencies.sort()
        pct = lambda q: latencies[int(q * (len(latencies) - 1))] * 1000  # noqa: E731
        print(
            f"{total} orders, concurrency {concurrency}: {total / took:.0f} orders/s "
            f"(half with a coupon), p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, statuses {statuses}"
        )
    finally:
        for runner in reversed(c.runners):
            await runner.cleanup()
        await c.http.close()
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 400, int(sys.argv[2]) if len(sys.argv) > 2 else 20))
