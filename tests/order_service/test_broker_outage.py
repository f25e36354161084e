"""A broker outage delays orders and fails none: the saga deadline starts at the broker's ack.

The order service and scripted participants run against a PRIVATE broker that the test stops and
starts (the shared one is never touched), with deadlines far shorter than the outage.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from order_service.app import create_app
from order_service.config import Settings
from tests.order_service.support import HOLD, LookupStub, ScriptedParticipants, eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

PRODUCTS = {10: {"name": "Apple", "price": 1000, "status": "SELLABLE"}}
STEP_TIMEOUT_S = 3.0
MAX_ATTEMPTS = 3  # 9 s for the participants to be back once the broker is


def _settings(dsn: str, prefix: str, bootstrap: str, stub_url: str) -> Settings:
    # no outage grace: the sweeper runs throughout, so only the arming on ack keeps the saga alive
    return Settings(
        database_url=dsn,
        kafka_topic_prefix=prefix,
        kafka_bootstrap=bootstrap,
        port=0,
        catalog_url=stub_url,
        balance_url=stub_url,
        saga_step_timeout_s=STEP_TIMEOUT_S,
        saga_max_attempts=MAX_ATTEMPTS,
        saga_backoff_cap_s=2.0,
        saga_sweep_interval_s=0.1,
        saga_outage_grace_s=0,
        outbox_poll_interval_s=0.2,
        kafka_send_timeout_s=1.0,
        access_log=False,
        order_wait_timeout_s=1.0,
    )


async def _saga(dsn: str, order_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT step, attempts, deadline, send_id, wait_s, clock_timestamp() AS db_now,"
            " (SELECT count(*) FROM outbox WHERE msg_key = $1) AS queued FROM sagas WHERE order_id = $1::uuid",
            order_id,
        )
    finally:
        await conn.close()


async def _order(client: TestClient, order_id: str) -> dict:
    resp = await client.get(f"/api/v1/orders/{order_id}")
    return await resp.json()


async def test_orders_placed_while_the_broker_is_down_complete_once_it_is_back(
    new_database, private_broker, topic_prefix
) -> None:
    prefix = f"{topic_prefix}outage."
    stub = LookupStub()
    stub.products.update(PRODUCTS)
    stub.users.update({501, 502})
    stub_server = TestServer(stub.app())
    await stub_server.start_server()
    parts = ScriptedParticipants(private_broker.bootstrap, prefix)
    parts.script(502, DeductBalance=HOLD)
    dsn = await new_database("order")
    client = TestClient(
        TestServer(
            create_app(_settings(dsn, prefix, private_broker.bootstrap, str(stub_server.make_url("")).rstrip("/")))
        )
    )
    await client.start_server()
    await parts.start()
    body = {"user_id": 501, "items": [{"product_id": 10, "quantity": 1}]}
    try:
        # a command the broker acknowledged (never answered) arms its deadline: one attempt, a deadline on the DB clock
        resp = await client.post("/api/v1/orders", json={**body, "user_id": 502}, headers={"Prefer": "respond-async"})
        held = (await resp.json())["order_id"]
        armed = await eventually(lambda: _armed(dsn, held), timeout=30)
        assert armed["attempts"] == 1 and armed["send_id"] is None and armed["wait_s"] == STEP_TIMEOUT_S

        await asyncio.to_thread(private_broker.stop)
        resp = await client.post("/api/v1/orders", json=body, headers={"Prefer": "respond-async"})
        assert resp.status == 202
        order_id = (await resp.json())["order_id"]
        # far past every deadline the saga could have had: it waits for its send, untouched
        await asyncio.sleep(STEP_TIMEOUT_S * MAX_ATTEMPTS + 2)
        waiting = await _saga(dsn, order_id)
        assert waiting["step"] == "DEDUCTING_BALANCE", dict(waiting)
        assert waiting["attempts"] == 0 and waiting["deadline"] is None and waiting["send_id"] is not None
        assert waiting["queued"] == 1  # no re-send was queued while the first one could not leave
        assert (await _order(client, order_id))["status"] == "PENDING"

        await asyncio.to_thread(private_broker.start)
        done = await eventually(lambda: _final(client, order_id), timeout=90)
        assert done["status"] == "COMPLETED" and done["failure_code"] is None, (done, parts.commands(order_id))
        # Forward only, nothing compensated. Once the broker is back, the balance step may arrive more
        # than once (a send retried as the broker came back, or a re-send after its armed deadline):
        # at-least-once delivery, and the participant is idempotent per order.
        sent = parts.commands(order_id)
        first_stock = sent.index("DeductStock")
        assert first_stock >= 1 and set(sent[:first_stock]) == {"DeductBalance"}, sent
        assert not {"RefundBalance", "RestoreStock"} & set(sent), sent
    finally:
        await parts.stop()
        await client.close()
        await stub_server.close()


async def _armed(dsn: str, order_id: str) -> asyncpg.Record | None:
    row = await _saga(dsn, order_id)
    if row is None or row["deadline"] is None:
        return None
    # armed on the database's clock at the ack: at most the step timeout ahead of it
    assert row["deadline"] - row["db_now"] <= timedelta(seconds=STEP_TIMEOUT_S)
    return row


async def _final(client: TestClient, order_id: str) -> dict | None:
    order = await _order(client, order_id)
    return order if order.get("status") in ("COMPLETED", "FAILED") else None
