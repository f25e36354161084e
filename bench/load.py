"""An asyncio order-load driver against the gateway, usable from other code (benchmarks, fault tests).

    async with OrderLoad(gateway_url, admin_token, users=50, products=10, rate=200, coupons=True) as load:
        await asyncio.sleep(10)          # orders flow in the background while the block runs
        print(load.counters())
    # leaving the block stops issuing and waits for the orders in flight (drain)
    problems = await check_invariants(cluster_json_path, load.run_data())

What it does:
- ``setup()`` (called by ``__aenter__``) creates, through the gateway, its own fresh users (each
  charged ``balance`` won), products (``stock`` units at ``price``) and, with ``coupons=True``,
  ``coupon_kinds`` coupons of ``users`` copies each, one copy issued to every user.
- ``start()`` (also called by ``__aenter__``) runs orders in the background: at ``rate`` orders/s
  (open loop, at most ``max_in_flight`` at once), or flat out with ``concurrency`` workers when
  ``rate`` is None. Each order picks a random user and ``items_per_order`` random products; a
  share ``coupon_share`` of the orders use one of the user's still-available coupons.
- Each order's POST -> outcome latency is measured; a ``202 PENDING`` answer is followed up with
  ``GET /api/v1/orders/{id}`` until the order is final (or ``settle_timeout`` passes).
- ``stop()`` (called by ``__aexit__``) stops issuing and waits for the orders in flight.

Stable API (other code depends on it): ``OrderLoad`` (constructor keywords below, ``setup``,
``start``, ``stop``, ``run_for``, ``counters``, ``records``, ``run_data``, ``timeline``),
``OrderRecord``, ``RunData``, ``Api``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import aiohttp

try:
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data) if data else None

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    import json

    def _loads(data: bytes) -> Any:
        return json.loads(data) if data else None

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()


JSON = {"Content-Type": "application/json"}


class Api:
    """A thin gateway client: ``call`` returns (status, decoded body); ``ok`` asserts the status."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, admin_token: str | None = None) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.admin = {"X-Admin-Token": admin_token} if admin_token else {}

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = _dumps(body) if body is not None else None
        hdrs = {**JSON, **(headers or {})} if data is not None else (headers or {})
        async with self.session.request(method, self.base + path, data=data, headers=hdrs) as resp:
            raw = await resp.read()
            try:
                return resp.status, _loads(raw)
            except ValueError:
                return resp.status, raw.decode(errors="replace")

    async def ok(
        self,
        method: str,
        path: str,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
        retries: int = 5,
    ) -> Any:
        last: tuple[int, Any] | None = None
        for attempt in range(retries):
            try:
                last = await self.call(method, path, body, headers)
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = (0, repr(exc))
            if last[0] == expect:
                return last[1]
            if last[0] not in (0, 429, 502, 503, 504):
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"{method} {path}: expected {expect}, got {last}")


@dataclass
class OrderRecord:
    """One POST /orders and what came of it."""

    user_id: int
    items: list[dict[str, int]]
    user_coupon_id: int | None
    idempotency_key: str
    started: float  # monotonic seconds since the load started
    order_id: str | None = None
    http_status: int | None = None  # of the POST (0 = no answer: connection error / client timeout)
    status: str | None = None  # COMPLETED | FAILED | PENDING (unsettled) | None (no order made)
    failure_code: str | None = None  # the order's failure_code, or the problem code of a refused POST
    latency: float | None = None  # seconds, POST -> final outcome (including 202 follow-up)
    finished: float | None = None  # monotonic seconds since the load started


@dataclass
class RunData:
    """Everything a run created, for ``bench.invariants.check_invariants``. JSON-serialisable."""

    gateway_url: str
    user_ids: list[int] = field(default_factory=list)
    charged: dict[int, int] = field(default_factory=dict)  # user_id -> won charged by the run
    product_ids: list[int] = field(default_factory=list)
    initial_stock: dict[int, int] = field(default_factory=dict)  # product_id -> stock at creation
    coupon_ids: list[int] = field(default_factory=list)
    coupon_totals: dict[int, int] = field(default_factory=dict)  # coupon_id -> total_quantity
    user_coupons: dict[int, list[int]] = field(default_factory=dict)  # user_id -> user_coupon_ids issued
    orders: list[dict[str, Any]] = field(default_factory=list)  # asdict(OrderRecord)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunData:
        def ints(d: dict[Any, Any]) -> dict[int, Any]:
            return {int(k): v for k, v in d.items()}

        return cls(
            gateway_url=data["gateway_url"],
            user_ids=list(data["user_ids"]),
            charged=ints(data["charged"]),
            product_ids=list(data["product_ids"]),
            initial_stock=ints(data["initial_stock"]),
            coupon_ids=list(data["coupon_ids"]),
            coupon_totals=ints(data["coupon_totals"]),
            user_coupons=ints(data["user_coupons"]),
            orders=list(data["orders"]),
        )


FINAL = ("COMPLETED", "FAILED")


class OrderLoad:
    """Order load through the gateway. See the module docstring."""

    def __init__(
        self,
        gateway_url: str,
        admin_token: str,
        *,
        users: int = 50,
        products: int = 10,
        rate: float | None = None,
        concurrency: int = 32,
        max_in_flight: int = 2000,
        coupons: bool = True,
        coupon_kinds: int = 3,
        coupon_share: float = 0.3,
        items_per_order: int = 1,
        quantity: int = 1,
        price: int = 1000,
        stock: int = 1_000_000,
        balance: int = 10_000_000,
        prefer_async: bool = False,
        settle_timeout: float = 30.0,
        request_timeout: float = 30.0,
        setup_concurrency: int = 32,
        session: aiohttp.ClientSession | None = None,
        seed: int | None = None,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.admin_token = admin_token
        self.n_users, self.n_products = users, products
        self.rate, self.concurrency, self.max_in_flight = rate, concurrency, max_in_flight
        self.coupons, self.coupon_kinds, self.coupon_share = coupons, coupon_kinds, coupon_share
        self.items_per_order, self.quantity = min(items_per_order, products), quantity
        self.price, self.stock, self.balance = price, stock, balance
        self.prefer_async, self.settle_timeout = prefer_async, settle_timeout
        self.request_timeout, self.setup_concurrency = request_timeout, setup_concurrency
        self._own_session = session is None
        self._session = session
        self._rng = random.Random(seed)
        self.data = RunData(gateway_url=self.gateway_url)
        self.records: list[OrderRecord] = []
        self._free_coupons: dict[int, list[int]] = {}
        self._stopping = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._t0 = 0.0
        self.in_flight = 0
        self.completed = 0
        self.failed: Counter[str] = Counter()  # failure code -> count (FAILED orders and refused POSTs)
        self.errors: Counter[int] = Counter()  # unexpected HTTP status -> count (0 = no answer)
        self.pending_unsettled = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use `async with OrderLoad(...)` or call setup() first"
        return self._session

    @property
    def api(self) -> Api:
        return Api(self.session, self.gateway_url, self.admin_token)

    async def __aenter__(self) -> Self:
        await self.setup()
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.request_timeout)
            )

    async def setup(self) -> RunData:
        """Create the run's users (charged), products and coupons (issued one per user per kind)."""
        self._open()
        api, sem, tag = self.api, asyncio.Semaphore(self.setup_concurrency), uuid.uuid4().hex[:6]

        async def user(n: int) -> int:
            async with sem:
                body = await api.ok("POST", "/api/v1/users", {"name": f"bench-{tag}-{n}"}, expect=201)
                uid = body["user_id"]
                left = self.balance
                while left > 0:
                    amount = min(left, 10_000_000)
                    await api.ok(
                        "POST",
                        f"/api/v1/users/{uid}/balance/charge",
                        {"amount": amount},
                        headers={"Idempotency-Key": f"bench-{uuid.uuid4()}"},
                    )
                    left -= amount
                return uid

        async def product(n: int) -> int:
            async with sem:
                body = await api.ok(
                    "POST",
                    "/api/v1/admin/products",
                    {"name": f"bench-{tag}-p{n}", "price": self.price, "stock": self.stock},
                    expect=201,
                    headers=api.admin,
                )
                return body["product_id"]

        self.data.user_ids = list(await asyncio.gather(*(user(n) for n in range(self.n_users))))
        self.data.charged = dict.fromkeys(self.data.user_ids, self.balance)
        self.data.product_ids = list(await asyncio.gather(*(product(n) for n in range(self.n_products))))
        self.data.initial_stock = dict.fromkeys(self.data.product_ids, self.stock)
        self.data.user_coupons = {u: [] for u in self.data.user_ids}
        if self.coupons and self.coupon_kinds > 0:
            for k in range(self.coupon_kinds):
                body = await api.ok(
                    "POST",
                    "/api/v1/admin/coupons",
                    {
                        "name": f"bench-{tag}-c{k}",
                        "discount_type": "FIXED",
                        "discount_value": max(1, self.price // 10),
                        "total_quantity": self.n_users,
                        "valid_days": 7,
                    },
                    expect=201,
                    headers=api.admin,
                )
                self.data.coupon_ids.append(body["coupon_id"])
                self.data.coupon_totals[body["coupon_id"]] = self.n_users

            async def issue(cid: int, uid: int) -> None:
                async with sem:
                    body = await api.ok("POST", f"/api/v1/coupons/{cid}/issue", {"user_id": uid}, expect=201)
                    self.data.user_coupons[uid].append(body["user_coupon_id"])

            await asyncio.gather(*(issue(c, u) for c in self.data.coupon_ids for u in self.data.user_ids))
        self._free_coupons = {u: list(ids) for u, ids in self.data.user_coupons.items()}
        return self.data

    def start(self) -> None:
        """Start issuing orders in the background (after ``setup``)."""
        assert self.data.user_ids and self.data.product_ids, "setup() first"
        self._stopping.clear()
        self._t0 = time.monotonic()
        self._driver = asyncio.create_task(self._drive_rate() if self.rate else self._drive_flat())

    async def stop(self, drain: bool = True) -> None:
        """Stop issuing; with ``drain`` wait for the orders in flight (each bounded by its timeouts)."""
        self._stopping.set()
        if self._driver is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        if self._tasks:
            if drain:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_for(self, seconds: float) -> None:
        """Let the load run ``seconds`` (convenience for ``await asyncio.sleep``)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0 if self._t0 else 0.0

    # ------------------------------------------------------------------ drivers

    async def _drive_rate(self) -> None:
        assert self.rate
        interval, n = 1.0 / self.rate, 0
        while not self._stopping.is_set():
            due = self._t0 + n * interval
            delay = due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            n += 1
            if self.in_flight >= self.max_in_flight:
                self.errors[-1] += 1  # -1 = skipped: too many in flight (the target rate is not reached)
                continue
            task = asyncio.create_task(self._one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drive_flat(self) -> None:
        async def worker() -> None:
            while not self._stopping.is_set():
                await self._one()

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        await asyncio.gather(*workers, return_exceptions=True)

    # ------------------------------------------------------------------ one order

    def _pick(self) -> tuple[int, list[dict[str, int]], int | None]:
        user = self._rng.choice(self.data.user_ids)
        products = self._rng.sample(self.data.product_ids, self.items_per_order)
        items = [{"product_id": p, "quantity": self.quantity} for p in products]
        coupon = None
        pool = self._free_coupons.get(user)
        if pool and self._rng.random() < self.coupon_share:
            coupon = pool.pop()
        return user, items, coupon

    async def _one(self) -> None:
        user, items, coupon = self._pick()
        rec = OrderRecord(user, items, coupon, f"bench-{uuid.uuid4()}", time.monotonic() - self._t0)
        self.records.append(rec)
        body: dict[str, Any] = {"user_id": user, "items": items}
        if coupon is not None:
            body["user_coupon_id"] = coupon
        headers = {"Idempotency-Key": rec.idempotency_key}
        if self.prefer_async:
            headers["Prefer"] = "respond-async"
        began = time.monotonic()
        self.in_flight += 1
        try:
            try:
                status, answer = await self.api.call("POST", "/api/v1/orders", body, headers)
            except (TimeoutError, aiohttp.ClientError):
                status, answer = 0, None
            rec.http_status = status
            if isinstance(answer, dict) and answer.get("order_id"):
                rec.order_id = str(answer["order_id"])
            if status == 201:
                rec.status = answer.get("status", "COMPLETED")
            elif status == 202 and rec.order_id:
                rec.status, rec.failure_code = await self._follow(rec.order_id)
            elif status == 409 and isinstance(answer, dict):
                rec.failure_code = answer.get("code")
                rec.status = "FAILED" if rec.order_id else None
            else:
                self.errors[status] += 1
        finally:
            self.in_flight -= 1
        rec.latency = time.monotonic() - began
        rec.finished = time.monotonic() - self._t0
        if rec.status == "COMPLETED":
            self.completed += 1
        elif rec.status == "FAILED" or (rec.status is None and rec.failure_code):
            self.failed[rec.failure_code or "UNKNOWN"] += 1
        elif rec.status == "PENDING":
            self.pending_unsettled += 1
        if coupon is not None and rec.status != "COMPLETED" and rec.http_status in (409, 400, 404):
            self._free_coupons[user].append(coupon)  # released (or never taken): usable again

    async def _follow(self, order_id: str) -> tuple[str, str | None]:
        deadline = time.monotonic() + self.settle_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            try:
                status, order = await self.api.call("GET", f"/api/v1/orders/{order_id}")
            except (TimeoutError, aiohttp.ClientError):
                continue
            if status == 200 and order.get("status") in FINAL:
                return order["status"], order.get("failure_code")
        return "PENDING", None

    # ------------------------------------------------------------------ results

    def counters(self) -> dict[str, Any]:
        """A snapshot: in flight, completed, failed by code, errors by HTTP status, orders sent."""
        return {
            "elapsed_s": round(self.elapsed, 3),
            "sent": len(self.records),
            "in_flight": self.in_flight,
            "completed": self.completed,
            "failed": dict(self.failed),
            "errors": dict(self.errors),
            "pending_unsettled": self.pending_unsettled,
        }

    def run_data(self) -> RunData:
        """What the run created and every order record (for the invariant check)."""
        self.data.orders = [asdict(r) for r in self.records]
        return self.data

    def timeline(self, bucket_s: float = 1.0) -> list[dict[str, Any]]:
        """Per-bucket completions/s and latency percentiles (ms) of the orders finished in that bucket."""
        return timeline(self.records, bucket_s)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def latency_summary(latencies_s: Iterable[float]) -> dict[str, float | None]:
    ms = [x * 1000 for x in latencies_s]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
    }


def timeline(
    records: Iterable[Any], bucket_s: float = 1.0, ok: tuple[str, ...] = ("COMPLETED",)
) -> list[dict[str, Any]]:
    """Bucket records (with ``finished``, ``latency``, ``status``) by finish time."""
    buckets: dict[int, list[Any]] = {}
    for r in records:
        if r.finished is not None:
            buckets.setdefault(int(r.finished // bucket_s), []).append(r)
    out = []
    for b in range(max(buckets) + 1 if buckets else 0):
        rs = buckets.get(b, [])
        good = [r.latency for r in rs if r.status in ok and r.latency is not None]
        out.append(
            {
                "t": round(b * bucket_s, 3),
                "ok_per_s": len(good) / bucket_s,
                "all_per_s": len(rs) / bucket_s,
                **{k: v for k, v in latency_summary(good).items() if k != "count"},
            }
        )
    return out
