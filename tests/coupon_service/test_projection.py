"""Known users come from the real user.registered topic; the lookup is asked only for unseen ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from shared.events.users import UserRegistered
from shared.messaging.envelope import Outgoing
from tests.coupon_service.conftest import MISSING_FROM, Env
from tests.support.kafka import produce

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def _wait_known(dsn: str, user_id: int, timeout: float = 20.0) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(timeout):
            while not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM known_users WHERE user_id=$1)", user_id):
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_registered_user_is_projected_and_never_looked_up(coupon_env: Env) -> None:
    env = coupon_env
    user = MISSING_FROM + 12345  # the lookup stub would say 404 for this id
    event = Outgoing(
        f"{env.settings.kafka_topic_prefix}user.registered",
        str(user),
        UserRegistered(user_id=user, name="kim", created_at=datetime.now(UTC)),
    )
    # sent twice: the inbox makes the redelivery a no-op
    await produce(
        env.settings.kafka_bootstrap,
        [(event.topic, event.key.encode(), event.value(), [(k, v.encode()) for k, v in event.headers().items()])] * 2,
    )
    await _wait_known(env.settings.database_url, user)
    coupon = await env.create_coupon(total_quantity=1)
    status, body = await env.call("POST", f"/api/v1/coupons/{coupon['coupon_id']}/issue", {"user_id": user})
    assert status == 201, body
    assert user not in env.lookups


async def test_positive_lookup_is_stored(coupon_env: Env) -> None:
    env = coupon_env
    user = 424242
    status, _ = await env.call("GET", f"/api/v1/users/{user}/coupons")
    assert status == 200 and env.lookups.count(user) == 1
    await _wait_known(env.settings.database_url, user, timeout=1)
