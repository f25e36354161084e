"""HTTP contract of users and balance against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from balance_service.bootstrap import DEPS
from shared.messaging import topics
from tests.support.bad_input import body_mutations, names_field, query_mutations
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


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": ""}',
        b'{"name": 5}',
        b"{}",
        b"{bad",
        b"",
        b'{"name": "' + b"x" * 101 + b'"}',
        b'{"name": "a\\u0000b"}',
        b'{"name": ["Kim"]}',
    ],
)
async def test_register_rejects_invalid_bodies(h, body: bytes) -> None:
    resp = await h.client.post("/api/v1/users", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/users/{u}", "/api/v1/users/{u}/balance", "/api/v1/users/{u}/balance/history", "/internal/users/{u}"],
)
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
    assert [(i["type"], i["amount"], i["balance_after"], i["order_id"]) for i in items] == [
        ("CHARGE", 5000, 5000, None)
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{bad json",
        b"",
        b"[]",
        b'{"amount": "1000"}',
        b'{"amount": 1000.0}',
        b'{"amount": true}',
        b'{"amount": null}',
        b'{"amount": 0}',
        b'{"amount": -1000}',
        b'{"amount": 10000001}',
        b'{"amount": 100000000000000000000000000000000000}',
        b'{"amount": 1e3}',
        b"{}",
        b'{"amt": 5}',
    ],
)
async def test_charge_validation_errors_change_nothing(h, body: bytes) -> None:
    user = await h.new_user(balance=700)
    resp = await h.client.post(
        f"/api/v1/users/{user}/balance/charge", data=body, headers={"Content-Type": "application/json"}
    )
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


@pytest.mark.parametrize(
    "params", [{"cursor": "!!!"}, {"cursor": "aGVsbG8"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}]
)
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


async def test_concurrent_charges_of_many_users_are_batched_and_exact(h) -> None:
    """Charges without a key share statements: every user ends exact, with exact history rows."""
    users = [await h.new_user() for _ in range(20)]
    charges = h.client.app[DEPS].charges
    batches_before = charges.batcher.batches
    plan = [(users[n % 20], 100 + n) for n in range(300)]  # 15 charges per user, interleaved
    responses = await asyncio.gather(*(h.charge(u, a) for u, a in plan))
    assert [r.status for r in responses] == [200] * 300
    assert charges.batcher.batches - batches_before < 300, "no two charges shared a statement"
    for user in users:
        mine = [a for u, a in plan if u == user]
        assert await h.balance(user) == sum(mine)
        items = (await h.history(user, limit=100))["items"]
        assert sorted(i["amount"] for i in items) == sorted(mine)
        # every row's balance_after is the running total of a serial order of the same charges
        by_after = sorted(items, key=lambda i: i["balance_after"])
        running = 0
        for item in by_after:
            running += item["amount"]
            assert item["balance_after"] == running


async def test_batched_limit_unknown_users_and_repeats_in_one_batch(h) -> None:
    near = await h.new_user(balance=MAX - 1_500)
    free = await h.new_user()
    unknown = 9_000_000_000_000
    calls = [(near, 1_000), (free, 5), (unknown, 7), (near, 1_000), (free, 6), (near, 400)]
    responses = await asyncio.gather(*(h.charge(u, a) for u, a in calls))
    codes = [(r.status, (await r.json()).get("code")) for r in responses]
    assert codes[1] == codes[4] == (200, None) and codes[2] == (404, "USER_NOT_FOUND")
    near_codes = [codes[0], codes[3], codes[5]]
    # 1,000 + 400 fit under the limit, a second 1,000 never does, whatever the order
    assert sorted(near_codes) == [(200, None), (200, None), (409, "BALANCE_LIMIT_EXCEEDED")]
    assert await h.balance(near) == MAX - 100 and await h.balance(free) == 11


async def test_a_row_held_elsewhere_does_not_hold_up_the_batch(h, pool) -> None:
    """A batch skips a locked balance row: other users' charges finish while it waits alone."""
    held, other = await h.new_user(), await h.new_user()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1 FROM balances WHERE user_id = $1 FOR UPDATE", held)
        try:
            waiting = [asyncio.create_task(h.charge(held, 10)) for _ in range(3)]
            others = await asyncio.wait_for(asyncio.gather(*(h.charge(other, 1) for _ in range(30))), 10)
            assert [r.status for r in others] == [200] * 30
            assert not any(t.done() for t in waiting)
        finally:
            await tx.rollback()
    assert [r.status for r in await asyncio.gather(*waiting)] == [200] * 3
    assert await h.balance(held) == 30 and await h.balance(other) == 30


async def test_huge_integers_and_nul_are_400_naming_the_field_and_change_nothing(h) -> None:
    user = await h.new_user(balance=500)
    cases = [("POST", "/api/v1/users", field, body) for field, body in body_mutations({"name": "Kim"})]
    cases += [
        ("POST", f"/api/v1/users/{user}/balance/charge", field, body) for field, body in body_mutations({"amount": 100})
    ]
    for method, path, field, body in cases:
        resp = await h.client.request(method, path, json=body)
        problem = await resp.json()
        assert resp.status == 400 and names_field(problem, field), (path, body, problem)
    for name, query in query_mutations({"limit": "5", "cursor": "h1"}):
        resp = await h.client.get(f"/api/v1/users/{user}/balance/history?{query}")
        assert resp.status == 400 and names_field(await resp.json(), name), query
    for path in (f"/api/v1/users/{user}%00", f"/api/v1/users/{2**63}/balance", f"/api/v1/users/{user}%00/balance"):
        resp = await h.client.get(path)
        assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR", path
    assert await h.balance(user) == 500
    assert [item["type"] for item in (await h.history(user))["items"]] == ["CHARGE"]
