"""Dead letters through the gateway, on the whole cluster: a record two services cannot process
is listed by the gateway (merged over the services, newest first, paged) and can be replayed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from shared.messaging.topics import DEFAULT_PARTITIONS
from tests.e2e.conftest import Api, Cluster, eventually
from tests.support.kafka import produce

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HUGE = 2**70  # decodes, but no bigint column takes it


async def _letters(api: Api, query: str = "") -> list[dict]:
    status, data, _ = await api.call("GET", f"/api/v1/admin/dead-letters?limit=100{query}", headers=api.admin)
    assert status == 200, data
    return data["items"]


@pytest.mark.asyncio
async def test_dead_letters_are_listed_and_replayed_through_the_gateway(api: Api, cluster: Cluster) -> None:
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "user_id": HUGE,
        "name": "x",
        "created_at": datetime.now(UTC).isoformat(),
    }
    headers = [("event-type", b"UserRegistered"), ("event-version", b"1"), ("event-id", event_id.encode())]
    await produce(
        cluster.kafka_bootstrap,
        [(f"{cluster.topic_prefix}user.registered", b"huge", json.dumps(body).encode(), headers)],
    )

    async def both() -> list[dict] | None:
        mine = [i for i in await _letters(api) if i["event_id"] == event_id]
        return mine if {i["service"] for i in mine} == {"coupon", "order"} else None

    mine = await eventually(both, timeout=60)
    assert all(i["topic"] == f"{cluster.topic_prefix}user.registered" and i["key"] == "huge" for i in mine)
    everything = await _letters(api)
    assert [i["failed_at"] for i in everything] == sorted((i["failed_at"] for i in everything), reverse=True)
    assert {i["service"] for i in await _letters(api, "&service=coupon")} == {"coupon"}
    # Pages of one, through the merged cursor, list the same items in the same order.
    paged, cursor = [], ""
    for _ in range(len(everything) + 1):
        status, data, _ = await api.call("GET", f"/api/v1/admin/dead-letters?limit=1{cursor}", headers=api.admin)
        assert status == 200, data
        paged += data["items"]
        if not data["next_cursor"]:
            break
        cursor = f"&cursor={data['next_cursor']}"
    assert [i["dead_letter_id"] for i in paged] == [i["dead_letter_id"] for i in everything]

    coupon_letter = next(i for i in mine if i["service"] == "coupon")
    path = f"/api/v1/admin/dead-letters/{coupon_letter['dead_letter_id']}/replay"
    assert (await api.call("POST", path))[0] == 401
    status, data, _ = await api.call("POST", path, headers=api.admin)
    assert status == 202 and data["dead_letter_id"] == coupon_letter["dead_letter_id"]

    async def replayed() -> bool:
        return any(
            i["dead_letter_id"] == coupon_letter["dead_letter_id"] and i["replayed_at"]
            for i in await _letters(api, "&service=coupon")
        )

    await eventually(replayed, timeout=30)
    # Still failing, it was set aside again: a new dead letter of the same record.
    assert len([i for i in await _letters(api, "&service=coupon") if i["event_id"] == event_id]) == 2
    status, data, _ = await api.call("POST", "/api/v1/admin/dead-letters/coupon-999999999/replay", headers=api.admin)
    assert status == 404 and data["code"] == "NOT_FOUND"


@pytest.mark.asyncio
async def test_a_poisoned_deduct_command_does_not_stop_payments(api: Api, cluster: Cluster) -> None:
    """Issue 14's reproduction: a DeductBalance that decodes but overflows int64 written to the
    balance commands topic (on the partition real orders use). It is set aside; orders still pay."""
    user = await api.user(100_000)
    product = await api.product(price=1000, stock=100)
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "order_id": str(uuid.uuid4()),
        "user_id": user,
        "amount": 1180591620717411303424,
    }
    headers = [("event-type", b"DeductBalance"), ("event-version", b"1"), ("event-id", event_id.encode())]
    topic = f"{cluster.topic_prefix}saga.balance.commands"
    await produce(cluster.kafka_bootstrap, [(topic, body["order_id"].encode(), json.dumps(body).encode(), headers)])
    poisoned = _partition(body["order_id"])
    same_partition = 0
    for placed in range(1, 41):  # noqa: B007 (read after the loop) until two orders' commands went behind the poison
        status, order, _ = await api.call(
            "POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1}]}
        )
        assert status == 201 and order["status"] == "COMPLETED", order
        same_partition += _partition(order["order_id"]) == poisoned
        if same_partition == 2:
            break
    assert same_partition == 2

    async def set_aside() -> list[dict]:
        return [i for i in await _letters(api, "&service=balance") if i["event_id"] == event_id]

    letter = (await eventually(set_aside, timeout=60))[0]
    assert letter["event_type"] == "DeductBalance" and "int64" in letter["error"]
    assert letter["partition"] == poisoned  # the orders counted above went behind it
    assert await api.balance(user) == 100_000 - 1000 * placed


def _partition(key: str) -> int:
    """The partition Kafka's default partitioner gives a key (the topics' partition count)."""
    every = list(range(DEFAULT_PARTITIONS))
    return DefaultPartitioner()(key.encode(), every, every)
