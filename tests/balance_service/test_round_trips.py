"""The hot paths keep their round trips: a charge, a read and the release of held money are one
statement each (single-statement units of work: no BEGIN/COMMIT)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from balance_service.db.unit_of_work import PostgresUnitsOfWork
from balance_service.domain.commands import Charge, CreateUser
from balance_service.messaging import orders
from balance_service.service import balances, users
from balance_service.service.balances import Charges
from shared.db.pool import create_pool
from shared.events.orders import OrderCompleted
from shared.messaging.envelope import Incoming

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_hot_paths_are_one_statement_each(client, settings) -> None:  # type: ignore[no-untyped-def]
    one = await create_pool(settings.database_url, min_size=1, max_size=1)
    uow = PostgresUnitsOfWork(one)
    charges = Charges(uow)
    try:
        async with one.acquire() as conn:
            protocol = conn._con._protocol  # type: ignore[attr-defined]

        async def count(call: Callable[[], Awaitable[object]]) -> int:
            await call()  # prepares the statements once
            start = protocol.queries_count
            await call()
            return int(protocol.queries_count - start)

        user = (await users.create_user(uow, CreateUser("rt"), topic="rt.user.registered")).user_id
        order = str(uuid.uuid4())
        completed = [Incoming("t", 0, 0, order, OrderCompleted.model_construct(order_id=order), "r")]
        counts = {
            "batched charge": await count(lambda: balances.charge(charges, Charge(user, 1))),
            "keyed charge": await count(lambda: balances.charge(charges, Charge(user, 1, str(uuid.uuid4())))),
            "get_user": await count(lambda: users.get_user(uow, user)),
            "get_balance": await count(lambda: balances.get_balance(uow, user)),
            "history": await count(lambda: balances.history(uow, user, before_id=None, limit=5)),
            "order.completed": await count(lambda: orders.completed_handler(uow)(completed)),
        }
        assert counts == dict.fromkeys(counts, 1)
    finally:
        await charges.batcher.aclose()
        await one.close()
