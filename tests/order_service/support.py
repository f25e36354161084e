"""Test helpers: scripted saga participants over real Kafka, a stub of the HTTP lookups, readers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.events import REGISTRY
from shared.events import saga as ev
from shared.messaging.envelope import Outgoing

OK, SILENT, DUP, HOLD = "ok", "silent", "dup", "hold"


def fail(code: str) -> tuple[str, str]:
    return ("fail", code)


def _answer(cmd: ev.SagaCommand, behaviour: Any, discount: int) -> ev.SagaReply:
    base = {"order_id": cmd.order_id, "command_id": cmd.event_id}
    failing = isinstance(behaviour, tuple)
    code = behaviour[1] if failing else ""
    match cmd:
        case ev.ReserveCoupon():
            if failing:
                return ev.CouponReservationFailed(**base, code=code)
            return ev.CouponReserved(**base, user_coupon_id=cmd.user_coupon_id, discount_amount=discount)
        case ev.DeductBalance():
            if failing:
                return ev.BalanceDeductionFailed(**base, code=code)
            return ev.BalanceDeducted(**base, amount=cmd.amount, balance_after=0)
        case ev.DeductStock():
            if failing:
                return ev.StockDeductionFailed(**base, code=code)
            return ev.StockDeducted(**base)
        case ev.ConfirmCoupon():
            return ev.CouponConfirmed(**base)
        case ev.ReleaseCoupon():
            return ev.CouponReleased(**base)
        case ev.RefundBalance():
            return ev.BalanceRefunded(**base, amount=0)
        case ev.RestoreStock():
            return ev.StockRestored(**base)
    raise AssertionError(f"unexpected command {cmd!r}")


class ScriptedParticipants:
    """Consumes the three command topics and answers on ``saga.replies`` per user script.

    ``script(user_id, DeductBalance=fail("INSUFFICIENT_BALANCE"), DeductStock=SILENT)``; commands
    without a user id are attributed to the user of the order's first command.
    """

    def __init__(self, bootstrap: str, prefix: str, discount: int = 500) -> None:
        self._bootstrap = bootstrap
        self._prefix = prefix
        self.discount = discount
        self.scripts: dict[int, dict[str, Any]] = {}
        self.order_user: dict[str, int] = {}
        self.received: dict[str, list[ev.SagaCommand]] = defaultdict(list)
        self.held: list[ev.SagaCommand] = []
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None

    def script(self, user_id: int, **behaviours: Any) -> None:
        self.scripts[user_id] = behaviours

    def commands(self, order_id: str) -> list[str]:
        return [cmd.event_type for cmd in self.received[order_id]]

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=1)
        await self._producer.start()
        consumer = AIOKafkaConsumer(
            *(f"{self._prefix}saga.{name}.commands" for name in ("coupon", "balance", "stock")),
            bootstrap_servers=self._bootstrap,
            group_id=f"scripted-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._run(consumer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer is not None:
            await self._producer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        await self._handle(REGISTRY.decode(record).message)
        finally:
            await consumer.stop()

    async def _handle(self, cmd: Any) -> None:
        user_id = getattr(cmd, "user_id", None)
        if user_id is not None:
            self.order_user.setdefault(cmd.order_id, user_id)
        self.received[cmd.order_id].append(cmd)
        behaviour = self.scripts.get(self.order_user.get(cmd.order_id, 0), {}).get(cmd.event_type, OK)
        if behaviour == SILENT:
            return
        if behaviour == HOLD:
            self.held.append(cmd)
            return
        reply = _answer(cmd, behaviour, self.discount)
        await self.send(reply)
        if behaviour == DUP:
            await self.send(reply)  # the same event twice: the inbox must drop it
            await self.send(reply.model_copy(update={"event_id": uuid.uuid4()}))  # a re-sent reply

    async def answer_held(self) -> None:
        held, self.held = self.held, []
        for cmd in held:
            await self.send(_answer(cmd, OK, self.discount))

    async def send(self, reply: ev.SagaReply) -> None:
        assert self._producer is not None
        out = Outgoing(f"{self._prefix}saga.replies", reply.order_id, reply)
        await self._producer.send_and_wait(
            out.topic, out.value(), key=out.key.encode(), headers=[(k, v.encode()) for k, v in out.headers().items()]
        )


class LookupStub:
    """Stands in for catalog's product lookup and balance's user lookup."""

    def __init__(self) -> None:
        self.products: dict[int, dict[str, Any]] = {}
        self.users: set[int] = set()
        self.lookups = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/internal/products/lookup", self._lookup)
        app.router.add_get("/internal/users/{user_id}", self._user)
        return app

    async def _lookup(self, request: web.Request) -> web.Response:
        self.lookups += 1
        ids = (await request.json())["product_ids"]
        items = [{"product_id": pid, "stock": 100, **self.products[pid]} for pid in ids if pid in self.products]
        return web.json_response({"items": items})

    async def _user(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        if user_id not in self.users:
            return web.json_response({"code": "USER_NOT_FOUND"}, status=404)
        return web.json_response({"user_id": user_id, "name": f"u{user_id}", "created_at": "2026-11-24T00:00:00Z"})


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record currently in ``topic`` (up to the end offsets at the time of the call)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        assert parts, f"no topic {topic}"
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[Any] = []
        async with asyncio.timeout(20):
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()
