"""Waiting for an order's outcome, whichever instance finishes it.

The transaction that finishes an order runs ``pg_notify('order_outcome', payload)``, the payload a
JSON object with the order id and its final status, failure code, amounts and completion time (a
bare order id is understood too). Each process holds ONE listening connection and wakes the
requests waiting for that id. A request that holds the order it just created answers from the
notice without reading the row again; any other waiter reads it. A waiter subscribes before it
reads the order row, so a notice can never slip between the read and the wait; a slow poll covers
notices lost while the listener reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from order_service.db.orders import get_order
from order_service.db.sagas import OUTCOME_CHANNEL
from order_service.domain.model import Order, OrderStatus
from shared.db.listen import listen

POLL_S = 1.0


Notice = dict[str, Any] | None
"""The outcome a notice carried, or ``None`` when it named the order only."""


def parse_notice(payload: str) -> tuple[str, Notice]:
    """``(order_id, outcome)`` of a notice: a JSON object, or a bare order id."""
    if not payload.startswith("{"):
        return payload, None
    data = orjson.loads(payload)
    return str(data["order_id"]), data


def finished(order: Order, outcome: dict[str, Any]) -> Order:
    """``order`` with the final status, amounts and times a notice reported."""
    completed = outcome.get("completed_at")
    return replace(
        order,
        status=OrderStatus(outcome["status"]),
        failure_code=outcome.get("failure_code"),
        discount_amount=int(outcome["discount_amount"]),
        paid_amount=int(outcome["paid_amount"]),
        completed_at=datetime.fromisoformat(completed) if completed else None,
    )


class OutcomeWaiter:
    """``fut = subscribe(id)`` ... ``await wait(id, fut, timeout)``; run :meth:`run` as a task."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._waiting: dict[str, set[asyncio.Future[Notice]]] = {}
        self.ready = asyncio.Event()

    def subscribe(self, order_id: str) -> asyncio.Future[Notice]:
        fut: asyncio.Future[Notice] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(order_id, set()).add(fut)
        return fut

    def cancel(self, order_id: str, fut: asyncio.Future[Notice]) -> None:
        waiters = self._waiting.get(order_id)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                del self._waiting[order_id]

    def _on_notice(self, payload: str) -> None:
        order_id, notice = parse_notice(payload)
        for fut in self._waiting.pop(order_id, ()):
            if not fut.done():
                fut.set_result(notice)

    async def wait(
        self,
        order_id: str,
        fut: asyncio.Future[Notice],
        timeout: float,
        *,
        read_first: bool = True,
        created: Order | None = None,
    ) -> Order | None:
        """The order once finished, or as it is when ``timeout`` passes. ``created``: the order
        as this request stored it, finished from the notice without a read when it carries one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if read_first:
                    order = await get_order(self._pool, order_id)
                    if order is None or order.finished:
                        return order
                read_first = True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return await get_order(self._pool, order_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fut), min(remaining, POLL_S))
                if fut.done():
                    outcome = fut.result()
                    if created is not None and outcome is not None:
                        return finished(created, outcome)
                    fut = self.subscribe(order_id)
        finally:
            self.cancel(order_id, fut)

    def _listening(self) -> None:
        self.ready.set()
        for order_id in list(self._waiting):  # notices may have been missed meanwhile
            self._on_notice(order_id)

    async def run(self) -> None:
        """Hold the listening connection (``shared.db.listen``); reconnect when it drops."""
        await listen(self._dsn, OUTCOME_CHANNEL, self._on_notice, on_connect=self._listening, name="outcome listener")
