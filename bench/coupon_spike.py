"""Spike benchmark of first-come-first-served coupon issuing (a script, not a test).

Starts nothing itself: point it at a running coupon_service (or the gateway). It creates a coupon
of ``--quantity`` copies, then fires one issue request per user, all at once, and prints
requests/s, p50/p99 latency, the status counts and the coupon's final issued count.

Users: with ``--balance-url`` they are registered first through balance's ``POST /api/v1/users``
(so coupon_service knows them through user.registered or its lookup); without it, ids
``--first-user-id``.. are used as they are and must already exist.

    python bench/coupon_spike.py --balance-url http://127.0.0.1:8081 --users 2000 --quantity 1000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

import aiohttp


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default="http://127.0.0.1:8083", help="coupon_service or the gateway")
    p.add_argument("--admin-path", default="/api/v1/admin/coupons")
    p.add_argument("--admin-token", default=None, help="X-Admin-Token (needed through the gateway)")
    p.add_argument("--balance-url", default=None, help="register the users here first")
    p.add_argument("--first-user-id", type=int, default=1, help="without --balance-url: ids used as they are")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--quantity", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=200, help="client connection limit")
    return p.parse_args()


async def register_users(session: aiohttp.ClientSession, balance_url: str, count: int) -> list[int]:
    async def one(n: int) -> int:
        async with session.post(f"{balance_url}/api/v1/users", json={"name": f"spike-{n}"}) as resp:
            body = await resp.json()
            assert resp.status == 201, body
            return body["user_id"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def create_coupon(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    headers = {"X-Admin-Token": args.admin_token} if args.admin_token else {}
    body = {
        "name": "spike",
        "discount_type": "FIXED",
        "discount_value": 1000,
        "total_quantity": args.quantity,
        "valid_days": 7,
    }
    async with session.post(args.base_url + args.admin_path, json=body, headers=headers) as resp:
        coupon = await resp.json()
        assert resp.status == 201, coupon
        return coupon["coupon_id"]


async def issue(session: aiohttp.ClientSession, url: str, user_id: int, start: asyncio.Event) -> tuple[str, float]:
    await start.wait()
    began = time.perf_counter()
    try:
        async with session.post(url, json={"user_id": user_id}) as resp:
            body = await resp.json(content_type=None)
            outcome = "201" if resp.status == 201 else f"{resp.status} {body.get('code')}"
    except aiohttp.ClientError as exc:
        outcome = type(exc).__name__
    return outcome, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        if args.balance_url:
            users = await register_users(session, args.balance_url.rstrip("/"), args.users)
        else:
            users = list(range(args.first_user_id, args.first_user_id + args.users))
        coupon_id = await create_coupon(session, args)
        url = f"{args.base_url}/api/v1/coupons/{coupon_id}/issue"
        start = asyncio.Event()
        tasks = [asyncio.create_task(issue(session, url, u, start)) for u in users]
        await asyncio.sleep(0.1)
        began = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        took = time.perf_counter() - began
        async with session.get(f"{args.base_url}/api/v1/coupons/{coupon_id}") as resp:
            coupon = await resp.json()
    latencies = [lat * 1000 for _, lat in results]
    print(
        f"coupon {coupon_id}: {len(results)} requests from {len(users)} users, quantity {args.quantity}, "
        f"client concurrency {args.concurrency}"
    )
    print(f"elapsed {took:.2f} s, {len(results) / took:.0f} requests/s")
    print(
        f"latency p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )
    print("status counts:", dict(Counter(outcome for outcome, _ in results)))
    print(
        f"final issued_quantity {coupon['issued_quantity']}, remaining {coupon['remaining_quantity']}, "
        f"status {coupon['status']}"
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parse_args()))
