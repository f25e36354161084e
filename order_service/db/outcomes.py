"""Waiting for an order's outcome, whichever instance finishes it.

The transaction that finishes an order runs ``pg_notify('order_outcome', order_id)``. Each process
holds ONE listening connection and wakes the requests waiting for that id. A waiter subscribes
before it reads the order row, so a notice can never slip between the read and the wait; a
slow poll covers notices lost while the listener reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from order_service.db import repository as repo
from order_service.domain.order import Order

log = logging.getLogger(__name__)
POLL_S = 1.0


class OutcomeWaiter:
    """``fut = subscribe(id)`` ... ``await wait(id, fut, timeout)``; run :meth:`run` as a task."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self.ready = asyncio.Event()

    def subscribe(self, order_id: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(order_id, set()).add(fut)
        return fut

    def cancel(self, order_id: str, fut: asyncio.Future[None]) -> None:
        waiters = self._waiting.get(order_id)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                del self._waiting[order_id]

    def _on_notice(self, _conn: object, _pid: int, _channel: str, order_id: str) -> None:
        for fut in self._waiting.pop(order_id, ()):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, order_id: str, fut: asyncio.Future[None], timeout: float, *, read_first: bool = True) -> Order | None:
        """The order once finished, or as it is when ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if read_first:
                    order = await repo.get_order(self._pool, order_id)
                    if order is None or order.finished:
                        return order
                read_first = True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return await repo.get_order(self._pool, order_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fut), min(remaining, POLL_S))
                if fut.done():
                    fut = self.subscribe(order_id)
        finally:
            self.cancel(order_id, fut)

    async def run(self) -> None:
        """Hold the listening connection; reconnect when it drops."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn)
                await conn.add_listener(repo.OUTCOME_CHANNEL, self._on_notice)
                self.ready.set()
                for order_id in list(self._waiting):  # notices may have been missed meanwhile
                    self._on_notice(None, 0, "", order_id)
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError) as exc:
                log.info("outcome listener reconnecting", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2.0)
