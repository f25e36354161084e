"""Benchmark scenarios against the gateway of a running cluster.

    python -m bench <scenario> [--cluster-state .local/cluster/cluster.json] [--gateway URL] [--admin-token T]
                               [--duration S] [--rate R | --concurrency C] [--floor] ...

Scenarios: order_payment, coupon_spike, balance_charge, top_products, floor (the pgbench floor alone);
``summary --tag T`` prints the table of the results tagged T against the targets.
``--cluster-state`` (a deploy/cluster.py ``cluster.json``) gives the gateway, the admin token and the
databases for the invariant check; without it, pass ``--gateway`` and ``--admin-token`` and only the
API-level checks run. Each run prints a progress line each second, checks invariants after, writes
``bench/results/<scenario>-<time>.json`` and a ``.png`` plot of throughput and latency over time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.cpu import CpuMeter
from bench.cpu import render as render_cpu
from bench.invariants import Targets, check_invariants
from bench.load import Api, OrderLoad, latency_summary, timeline

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Req:
    started: float
    finished: float | None = None
    latency: float | None = None
    status: str | None = None  # "ok" or an error label
    http_status: int = 0


def progress(label: str, elapsed: float, done: int, last: int, extra: str = "") -> None:
    sys.stdout.write(f"\r[{label}] {elapsed:5.1f}s  done {done:7d}  {done - last:6d}/s  {extra}\033[K")
    sys.stdout.flush()


async def ticker(label: str, t0: float, count: Any, extra: Any, stop: asyncio.Event) -> None:
    last = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        n = count()
        progress(label, time.monotonic() - t0, n, last, extra())
        last = n
    sys.stdout.write("\n")


def session(limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=30))


async def make_users(api: Api, n: int, charge: int = 0, parallel: int = 32) -> list[int]:
    sem, tag = asyncio.Semaphore(parallel), uuid.uuid4().hex[:6]

    async def one(i: int) -> int:
        async with sem:
            uid = (await api.ok("POST", "/api/v1/users", {"name": f"bench-{tag}-{i}"}, expect=201))["user_id"]
            if charge:
                await api.ok("POST", f"/api/v1/users/{uid}/balance/charge", {"amount": charge})
            return uid

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def closed_loop(
    label: str, duration: float, concurrency: int, rate: float | None, request: Any
) -> tuple[list[Req], float]:
    """Run ``request(req) -> None`` (fills status) flat out with ``concurrency`` workers, or at ``rate``/s."""
    reqs: list[Req] = []
    t0 = time.monotonic()
    stop = asyncio.Event()

    async def one() -> None:
        r = Req(time.monotonic() - t0)
        reqs.append(r)
        began = time.monotonic()
        try:
            await request(r)
        except (TimeoutError, aiohttp.ClientError) as exc:
            r.status = type(exc).__name__
        r.latency = time.monotonic() - began
        r.finished = time.monotonic() - t0

    async def worker() -> None:
        while time.monotonic() - t0 < duration:
            await one()

    tick = asyncio.create_task(
        ticker(label, t0, lambda: sum(1 for r in reqs if r.finished is not None), lambda: "", stop)
    )
    if rate:
        tasks: list[asyncio.Task[None]] = []
        n = 0
        while time.monotonic() - t0 < duration:
            due = t0 + n / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            n += 1
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    took = time.monotonic() - t0
    stop.set()
    await tick
    return reqs, took


def summarize_reqs(reqs: list[Req], took: float) -> dict[str, Any]:
    ok = [r.latency for r in reqs if r.status == "ok" and r.latency is not None]
    return {
        "requests": len(reqs),
        "ok": len(ok),
        "seconds": round(took, 3),
        "requests_per_s": round(len(reqs) / took, 1),
        "ok_per_s": round(len(ok) / took, 1),
        "latency_ok": latency_summary(ok),
        "latency_all": latency_summary([r.latency for r in reqs if r.latency is not None]),
        "outcomes": dict(Counter(r.status for r in reqs)),
    }


# --------------------------------------------------------------------------------- scenarios


async def order_payment(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    load = OrderLoad(
        ctx["gateway"],
        ctx["token"],
        users=args.users,
        products=args.products,
        rate=args.rate,
        concurrency=args.concurrency,
        coupons=args.coupon_share > 0,
        coupon_share=args.coupon_share,
        coupon_kinds=3,
        prefer_async=args.prefer_async,
        max_in_flight=args.max_in_flight,
    )
    print(f"[order_payment] setup: {args.users} users, {args.products} products ...", flush=True)
    await load.setup()
    stop = asyncio.Event()
    ctx["meter"].start()
    load.start()
    tick = asyncio.create_task(
        ticker(
            "order_payment",
            time.monotonic(),
            lambda: load.completed,
            lambda: f"in flight {load.in_flight}  failed {dict(load.failed)}  errors {dict(load.errors)}",
            stop,
        )
    )
    await load.run_for(args.duration)
    issued_for = load.elapsed
    await load.stop()
    recs = load.records
    done = [r for r in recs if r.status == "COMPLETED"]
    ctx["cpu"] = ctx["meter"].stop(len(done))
    stop.set()
    await tick
    await load.close()
    # sustained = completions within the issuing window (excluding the drain)
    in_window = [r for r in done if r.finished is not None and r.finished <= issued_for]
    result = {
        "mode": f"rate {args.rate}/s" if args.rate else f"flat out, concurrency {args.concurrency}",
        "seconds": round(issued_for, 3),
        "sent": len(recs),
        "completed": len(done),
        "completed_per_s": round(len(in_window) / issued_for, 1),
        "latency_completed": latency_summary([r.latency for r in done]),
        "latency_all": latency_summary([r.latency for r in recs if r.latency is not None]),
        "counters": load.counters(),
        "timeline": load.timeline(),
    }
    ctx["run_data"] = load.run_data()
    return result


async def coupon_spike(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    async with session(args.concurrency) as s:
        api = Api(s, ctx["gateway"], ctx["token"])
        print(f"[coupon_spike] setup: {args.users} users ...", flush=True)
        users = await make_users(api, args.users)
        body = {
            "name": f"spike-{uuid.uuid4().hex[:6]}",
            "discount_type": "FIXED",
            "discount_value": 1000,
            "total_quantity": args.quantity,
            "valid_days": 7,
        }
        coupon = (await api.ok("POST", "/api/v1/admin/coupons", body, expect=201, headers=api.admin))["coupon_id"]
        target = Api(s, args.target or ctx["gateway"])
        # every user's coupon service knows them (projection or lookup) before the spike: warm nothing else
        await asyncio.sleep(1.0)
        if args.warm_connections:
            # as behind a load balancer that keeps a pool of connections to the gateway: open one
            # connection per user now (a cheap read each), so the spike itself opens none
            await asyncio.gather(*(target.call("GET", f"/api/v1/coupons/{coupon}") for _ in users))
        start = asyncio.Event()
        reqs: list[Req] = []
        t0 = 0.0

        async def issue(uid: int) -> None:
            await start.wait()
            r = Req(time.monotonic() - t0)
            reqs.append(r)
            try:
                status, answer = await target.call("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": uid})
                r.http_status = status
                r.status = "ok" if status == 201 else f"{status} {(answer or {}).get('code')}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                r.status = type(exc).__name__
            r.finished = time.monotonic() - t0
            r.latency = r.finished - r.started

        tasks = [asyncio.create_task(issue(u)) for u in users]
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        stop = asyncio.Event()
        tick = asyncio.create_task(
            ticker("coupon_spike", t0, lambda: len([r for r in reqs if r.finished]), lambda: "", stop)
        )
        ctx["meter"].start()
        start.set()
        await asyncio.gather(*tasks)
        took = time.monotonic() - t0
        ctx["cpu"] = ctx["meter"].stop(len(reqs))
        stop.set()
        await tick
        info = await api.ok("GET", f"/api/v1/coupons/{coupon}")
    out = summarize_reqs(reqs, took)
    answered = [r.latency for r in reqs if r.http_status in (201, 409) and r.latency is not None]
    out.update(
        {
            "users": len(users),
            "quantity": args.quantity,
            "coupon_id": coupon,
            "connections": "warm (opened before the spike)" if args.warm_connections else "cold (one new per user)",
            "issued_quantity": info["issued_quantity"],
            "latency_answered": latency_summary(answered),
            "timeline": timeline(reqs, 0.1, ok=("ok",)),
        }
    )
    problems = []
    if info["issued_quantity"] != min(args.quantity, len(users)):
        problems.append(f"coupon: issued {info['issued_quantity']}, expected exactly {min(args.quantity, len(users))}")
    if out["outcomes"].get("ok", 0) != info["issued_quantity"]:
        problems.append(
            f"coupon: {out['outcomes'].get('ok', 0)} 201 answers but issued_quantity {info['issued_quantity']}"
        )
    ctx["extra_problems"] = problems
    ctx["coupon"] = (coupon, args.quantity)
    return out


async def balance_charge(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    async with session(0) as s:
        api = Api(s, ctx["gateway"], ctx["token"])
        print(f"[balance_charge] setup: {args.users} users ...", flush=True)
        users = await make_users(api, args.users)
        charged: Counter[int] = Counter()
        target = Api(s, args.target or ctx["gateway"])

        async def charge(r: Req) -> None:
            uid, amount = random.choice(users), random.randint(1, 100)
            status, _ = await target.call(
                "POST",
                f"/api/v1/users/{uid}/balance/charge",
                {"amount": amount},
                headers={"Idempotency-Key": f"b-{uuid.uuid4()}"} if args.idempotency else None,
            )
            r.http_status = status
            r.status = "ok" if status == 200 else str(status)
            if status == 200:
                charged[uid] += amount

        ctx["meter"].start()
        reqs, took = await closed_loop("balance_charge", args.duration, args.concurrency, args.rate, charge)
        ctx["cpu"] = ctx["meter"].stop(len(reqs))
        problems = []
        for uid in users:
            bal = (await api.ok("GET", f"/api/v1/users/{uid}/balance"))["balance"]
            if bal != charged[uid]:
                problems.append(f"money: user {uid} balance {bal}, charged {charged[uid]}")
        ctx["extra_problems"] = problems
        ctx["charged"] = {"users": users, "charged": dict(charged)}
    out = summarize_reqs(reqs, took)
    out["timeline"] = timeline(reqs, 1.0, ok=("ok",))
    return out


async def top_products(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    async with session(0) as s:
        api = Api(s, ctx["gateway"], ctx["token"])
        paths = [f"/api/v1/rankings/top-products?days={d}&limit={n}" for d in (1, 3, 7) for n in (5, 10)]

        async def read(r: Req) -> None:
            async with s.get(api.base + random.choice(paths)) as resp:
                await resp.read()
                r.http_status = resp.status
                r.status = "ok" if resp.status == 200 else str(resp.status)

        ctx["meter"].start()
        reqs, took = await closed_loop("top_products", args.duration, args.concurrency, args.rate, read)
        ctx["cpu"] = ctx["meter"].stop(len(reqs))
    out = summarize_reqs(reqs, took)
    out["timeline"] = timeline(reqs, 1.0, ok=("ok",))
    ctx["extra_problems"] = [] if out["outcomes"].get("ok") == len(reqs) else [f"reads: outcomes {out['outcomes']}"]
    return out


SCENARIOS = {
    "order_payment": order_payment,
    "coupon_spike": coupon_spike,
    "balance_charge": balance_charge,
    "top_products": top_products,
}

DEFAULTS = {  # scenario -> (users, duration, concurrency)
    "order_payment": (200, 20.0, 64),
    "coupon_spike": (2000, 0.0, 2000),
    "balance_charge": (500, 15.0, 64),
    "top_products": (0, 15.0, 64),
}


# ---------------------------------------------------------------------------------- output


def plot(path: Path, title: str, tl: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install -e '.[bench]')")
        return
    if not tl:
        return
    t = [p["t"] for p in tl]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    a.plot(t, [p["ok_per_s"] for p in tl], label="ok/s")
    a.plot(t, [p["all_per_s"] for p in tl], label="all/s", alpha=0.5)
    a.set_ylabel("per second")
    a.legend()
    a.set_title(title)
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        b.plot(t, [p[key] if p[key] is not None else float("nan") for p in tl], label=key)
    b.set_ylabel("latency ms")
    b.set_xlabel("seconds")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


async def run(args: argparse.Namespace) -> int:
    info: dict[str, Any] = {}
    if args.cluster_state:
        info = json.loads(Path(args.cluster_state).read_text())
    gateway = args.gateway or info.get("gateway_url") or "http://127.0.0.1:8080"
    token = args.admin_token or info.get("admin_token") or ""
    state_dir = Path(args.cluster_state).parent if args.cluster_state else None
    ctx: dict[str, Any] = {"gateway": gateway, "token": token, "meter": CpuMeter.for_cluster(state_dir)}
    floor = None
    if args.scenario == "floor" or args.floor:
        from bench.floor import run_floor

        admin = info.get("pg_admin_dsn") or args.pg_admin_dsn
        print(f"[floor] pgbench, one order's saga per transaction, {args.floor_seconds}s ...", flush=True)
        floor = run_floor(admin, seconds=args.floor_seconds, clients=args.floor_clients, suffix=uuid.uuid4().hex[:6])
        print(
            f"[floor] {floor['sagas_per_s']:.0f} sagas/s (avg {floor['latency_avg_ms']:.1f} ms, "
            f"{floor['clients']} clients)"
        )
        if args.scenario == "floor":
            return 0
    d_users, d_duration, d_conc = DEFAULTS[args.scenario]
    args.users = args.users or d_users
    args.duration = args.duration or d_duration
    args.concurrency = args.concurrency or d_conc
    result = await SCENARIOS[args.scenario](args, ctx)
    problems = list(ctx.get("extra_problems", []))
    if "run_data" in ctx and args.cluster_state:
        problems += await check_invariants(args.cluster_state, ctx["run_data"])
    elif "run_data" in ctx:
        problems.append("invariants: not checked against the databases (no --cluster-state)")
    if "coupon" in ctx and args.cluster_state:
        import asyncpg

        conn = await asyncpg.connect(Targets.from_cluster(args.cluster_state).coupon_dsn)
        try:
            cid, _ = ctx["coupon"]
            row = await conn.fetchrow(
                "SELECT count(user_id) AS issued, count(DISTINCT user_id) AS users"
                " FROM user_coupons WHERE coupon_id = $1",
                cid,
            )
            if row["issued"] != row["users"] or row["issued"] != result["issued_quantity"]:
                problems.append(f"coupon: database says {dict(row)}")
        finally:
            await conn.close()
    result = {
        "scenario": args.scenario,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k != "admin_token"},
        **result,
        "invariant_problems": problems,
        "floor": floor,
        "cpu": ctx.get("cpu"),
    }
    rate = result.get("completed_per_s") or result.get("ok_per_s")
    if floor and rate:
        result["ratio_to_floor"] = round(rate / floor["sagas_per_s"], 3)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{args.scenario}-{time.strftime('%Y%m%d-%H%M%S')}{('-' + args.tag) if args.tag else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    plot(stem.with_suffix(".png"), f"{args.scenario} ({result.get('mode', '')})", result.get("timeline", []))
    show = {k: v for k, v in result.items() if k not in ("timeline", "args", "run_data")}
    print(json.dumps({k: v for k, v in show.items() if k != "cpu"}, indent=2, default=str))
    if result.get("cpu"):
        print(render_cpu(result["cpu"]))
    print(f"invariants: {'all hold' if not problems else f'{len(problems)} BROKEN'}")
    for p in problems[:20]:
        print("  -", p)
    print(f"results: {stem}.json / .png")
    return 0 if not problems else 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("scenario", choices=[*SCENARIOS, "floor", "summary"])
    p.add_argument("--cluster-state", help="deploy/cluster.py cluster.json (gateway, token, databases)")
    p.add_argument("--gateway")
    p.add_argument("--admin-token")
    p.add_argument(
        "--target",
        help="send the measured requests here (e.g. a service directly) instead of the gateway;"
        " setup still goes through the gateway",
    )
    p.add_argument("--duration", type=float, default=0.0, help="seconds (keep <= 60)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--rate", type=float, default=None, help="target requests (orders)/s, open loop")
    group.add_argument("--concurrency", type=int, default=0, help="flat out with this many workers")
    p.add_argument("--users", type=int, default=0)
    p.add_argument("--products", type=int, default=20)
    p.add_argument("--quantity", type=int, default=1000, help="coupon_spike: copies of the coupon")
    p.add_argument(
        "--warm-connections",
        action="store_true",
        help="coupon_spike: open every user's connection before the spike (as a load balancer's"
        " keep-alive pool would); by default each user opens a new one in the spike",
    )
    p.add_argument(
        "--max-in-flight", type=int, default=512, help="order_payment --rate: cap (skips are counted as errors -1)"
    )
    p.add_argument("--coupon-share", type=float, default=0.3, help="order_payment: share of orders with a coupon")
    p.add_argument("--prefer-async", action="store_true", help="order_payment: Prefer: respond-async, then poll")
    p.add_argument("--idempotency", action="store_true", help="balance_charge: send an Idempotency-Key")
    p.add_argument("--floor", action="store_true", help="run the pgbench floor first and print the ratio")
    p.add_argument("--floor-seconds", type=int, default=10)
    p.add_argument("--floor-clients", type=int, default=8)
    p.add_argument("--pg-admin-dsn", default="postgresql://postgres@127.0.0.1:54329/postgres")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    args = p.parse_args(argv)
    if args.scenario == "summary":
        from bench.summary import summarize

        print(summarize(args.tag))
        return 0
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
