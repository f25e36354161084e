"""One LISTEN connection, held for good: reconnects when it drops.

The outbox relay is woken by ``NOTIFY outbox``; order_service's outcome waiter by the saga's
outcome notices. Both hold a dedicated connection (not a pooled one) that LISTENs, and both must
come back after the database restarts or the connection is cut. :func:`listen` is that loop: it
waits on the connection's termination listener (no polling), reconnects at once, and calls
``on_connect`` after each LISTEN took effect, so the caller can catch up on what it may have
missed while it was not listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

OnNotify = Callable[[str], None]
"""Called with each notification's payload (on the event loop; must not block)."""


async def listen(
    dsn: str,
    channel: str,
    on_notify: OnNotify,
    *,
    on_connect: Callable[[], None] | None = None,
    retry_s: float = 1.0,
    name: str = "listener",
) -> None:
    """LISTEN on ``channel`` until cancelled, reconnecting whenever the connection is lost or
    cannot be made (after ``retry_s``). ``on_connect`` runs each time the LISTEN is in place."""
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            await _hold(conn, channel, on_notify, on_connect)
            log.info("%s lost its connection; reconnecting", name)
        except asyncio.CancelledError:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.info("%s reconnecting", name, extra={"error": repr(exc)})
            await asyncio.sleep(retry_s)
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2.0)


async def _hold(
    conn: asyncpg.Connection, channel: str, on_notify: OnNotify, on_connect: Callable[[], None] | None
) -> None:
    """LISTEN on ``conn`` and return once it is closed (its termination listener fired)."""
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: on_notify(payload))
    if on_connect is not None:
        on_connect()
    if not conn.is_closed():
        await lost.wait()


__all__ = ["OnNotify", "listen"]
