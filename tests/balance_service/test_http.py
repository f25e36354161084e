"""HTTP contract of users and balance against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.messaging import topics
from tests.support.kafka import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

MAX = 10_000_000


async def test_register_get_and_internal_lookup(h) -> None:
    resp = await h.client.post("/api/v1/users", json={"name": "Kim"})
    assert resp.status == 201
    user = await resp.json()
    assert user["name"] == "Kim" and user["user_id"] >= 1 and user["created_at"].endswith("Z")
    for path in (f"/api/v1/users/{user['user_id']}", f"/internal/users/{user['user_id']}"):
        got = await h.client.get(path)
        assert got.status == 200 and await got.json() == user
    balance = await (await h.client.get(f"/api/v1/users/{user['user_id']}/balance")).json()
    assert balance["balance"] == 0 and balance["user_id"] == user["user_id"]
    assert balance["updated_at"].endswith("Z")


@pytest.mark.parametrize("body", [b'{"name": ""}', b'{"name": 5}', b"{}", b"{bad", b"", b'{"name": "' + b"x" * 101 + b'"}',
                                  b'{"name": "a\\u0000b"}', b'{"name": ["Kim"]}'])
async def test_register_rejects_invalid_bodies(h, body: bytes) -> None:
    resp = await h.client.post("/api/v1/users", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("path", ["/api/v1/users/{u}", "/api/v1/users/{u}/balance",
                                  "/api/v1/users/{u}/balance/history", "/internal/users/{u}"])
async def test_unknown_user_is_404(h, path: str) -> None:
    resp = await h.client.get(path.format(u=9_000_000_000))
    assert resp.status == 404
    problem = await resp.json()
    assert problem["code"] == "USER_NOT_FOUND" and problem["status"] == 404
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_charge_adds_and_writes_history(h) -> None:
    user = await h.new_user()
    resp = await h.charge(user, 5000)
    assert resp.status == 200
    assert await resp.json() == {"user_id": user, "balance": 5000, "charged": 5000}
    items = (await h.history(user))["items"]
    assert [(i["type"], i["amount"], i["balance_after"], i["order_id"]) for i in items] == [("CHARGE", 5000, 5000, None)]


@pytest.mark.parametrize(
    "body",
    [b"{bad json", b"", b"[]", b'{"amount": "1000"}', b'{"amount": 1000.0}', b'{"amount": true}',
     b'{"amount": null}', b'{"amount": 0}', b'{"amount": -1000}', b'{"amount": 10000001}',
     b'{"amount": 100000000000000000000000000000000000}', b'{"amount": 1e3}', b"{}", b'{"amt": 5}'],
)
async def test_charge_validation_errors_change_nothing(h, body: bytes) -> None:
    user = await h.new_user(balance=700)
    resp = await h.client.post(f"/api/v1/users/{user}/balance/charge", data=body,
                               headers={"Content-Type": "application/json"})
    assert resp.status == 400
    problem = await resp.json()
    assert problem["code"] == "VALIDATION_ERROR" and problem["errors"]
    assert await h.balance(user) == 700 and len((await h.history(user))["items"]) == 1


@pytest.mark.parametrize("path_user", ["0", "-1", "abc", "99999999999999999999999"])
async def test_charge_bad_path_id_is_400(h, path_user: str) -> None:
    resp = await h.client.post(f"/api/v1/users/{path_user}/balance/charge", json={"amount": 1})
    assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR"


async def test_charge_unknown_user_is_404(h) -> None:
    resp = await h.charge(9_000_000_001, 1000)
    assert resp.status == 404 and (await resp.json())["code"] == "USER_NOT_FOUND"


async def test_charge_over_limit_is_409_and_changes_nothing(h) -> None:
    user = await h.new_user(balance=MAX - 500)
    resp = await h.charge(user, 501)
    assert resp.status == 409
    assert (await resp.json())["code"] == "BALANCE_LIMIT_EXCEEDED"
    assert await h.balance(user) == MAX - 500 and len((await h.history(user))["items"]) == 1
    assert (await h.charge(user, 500)).status == 200
    assert await h.balance(user) == MAX


async def test_concurrent_charges_lose_nothing(h) -> None:
    user = await h.new_user(balance=12_345)
    responses = await asyncio.gather(*(h.charge(user, 1000) for _ in range(100)))
    assert [r.status for r in responses] == [200] * 100
    assert await h.balance(user) == 12_345 + 100_000
    history = await h.history(user, limit=100)
    assert len(history["items"]) == 100 and history["next_cursor"] is not None
    afters = sorted(i["balance_after"] for i in history["items"])
    assert afters == [12_345 + 1000 * k for k in range(1, 101)]  # every history row is exact


async def test_limit_holds_under_concurrent_charges(h) -> None:
    user = await h.new_user(balance=MAX - 25_500)
    responses = await asyncio.gather(*(h.charge(user, 1000) for _ in range(60)))
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 25 and statuses.count(409) == 35
    assert await h.balance(user) == MAX - 500


async def test_idempotent_charge_replays_first_response(h) -> None:
    user = await h.new_user()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await h.charge(user, 3000, headers=key)
    assert first.status == 200
    await h.charge(user, 100)  # the balance moves on; the replay still answers the first outcome
    again = await h.charge(user, 3000, headers=key)
    assert again.status == 200 and await again.json() == await first.json()
    assert await h.balance(user) == 3100
    reused = await h.charge(user, 4000, headers=key)
    assert reused.status == 409 and (await reused.json())["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await h.balance(user) == 3100
    other_user = await h.new_user()  # keys are scoped to the user
    assert (await h.charge(other_user, 4000, headers=key)).status == 200


async def test_racing_duplicates_charge_once(h) -> None:
    user = await h.new_user()
    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    responses = await asyncio.gather(*(h.charge(user, 1000, headers=key) for _ in range(20)))
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [200] * 20
    assert all(b == {"user_id": user, "balance": 1000, "charged": 1000} for b in bodies)
    assert await h.balance(user) == 1000 and len((await h.history(user))["items"]) == 1


async def test_idempotent_refusal_is_replayed(h) -> None:
    user = await h.new_user(balance=MAX)
    key = {"Idempotency-Key": "limit-key"}
    assert (await h.charge(user, 1, headers=key)).status == 409
    assert (await h.charge(user, 1, headers=key)).status == 409
    assert await h.balance(user) == MAX


@pytest.mark.parametrize("key", ["", "x" * 256])
async def test_idempotency_key_length(h, key: str) -> None:
    user = await h.new_user()
    resp = await h.charge(user, 10, headers={"Idempotency-Key": key})
    assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR"
    assert await h.balance(user) == 0
    assert (await h.charge(user, 10, headers={"Idempotency-Key": "x" * 255})).status == 200


async def test_history_pages_newest_first(h) -> None:
    user = await h.new_user()
    for amount in range(1, 8):
        assert (await h.charge(user, amount)).status == 200
    seen, cursor = [], None
    while True:
        page = await h.history(user, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["amount"] for i in seen] == [7, 6, 5, 4, 3, 2, 1]
    assert [i["id"] for i in seen] == sorted((i["id"] for i in seen), reverse=True)
    assert all(i["created_at"].endswith("Z") and i["type"] == "CHARGE" for i in seen)


@pytest.mark.parametrize("params", [{"cursor": "!!!"}, {"cursor": "aGVsbG8"}, {"limit": "0"},
                                    {"limit": "101"}, {"limit": "x"}])
async def test_history_bad_query_is_400(h, params: dict[str, str]) -> None:
    user = await h.new_user()
    resp = await h.client.get(f"/api/v1/users/{user}/balance/history", params=params)
    assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR"


async def test_user_registered_is_published(h) -> None:
    user = await h.new_user()
    topic = h.topic(topics.USER_REGISTERED)
    records = await read_topic(
        h.settings.kafka_bootstrap, topic, until=lambda rs: any(r.key == str(user).encode() for r in rs)
    )
    mine = [r for r in records if r.key == str(user).encode()]
    assert len(mine) == 1
    headers = dict(mine[0].headers)
    assert headers["event-type"] == b"UserRegistered"
    from shared.events.users import UserRegistered
    event = UserRegistered.model_validate_json(mine[0].value)
    assert event.user_id == user and event.name.startswith("user-")


async def test_openapi_documents_public_routes_only(h) -> None:
    spec = await (await h.client.get("/api/docs/openapi.json")).json()
    assert "/api/v1/users/{user_id}/balance/charge" in spec["paths"]
    assert "/api/v1/users/{user_id}/balance/history" in spec["paths"]
    assert not any(p.startswith("/internal") for p in spec["paths"])
