"""Batched issuing (service/issuing.py): concurrent requests share statements, with the same outcomes
as one by one. Real PostgreSQL; users are put in the ``known_users`` projection first, as
``user.registered`` would, so the batches settle them without asking balance."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from coupon_service.bootstrap import DEPS
from tests.coupon_service.conftest import MISSING_FROM, Env, new_user_id, start_instance

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@asynccontextmanager
async def _db(env: Env) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(env.settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _known_users(env: Env, count: int) -> list[int]:
    users = list({new_user_id() for _ in range(count)})
    assert len(users) == count
    async with _db(env) as conn:
        await conn.execute(
            "INSERT INTO known_users (user_id, name, created_at) SELECT u, 'u' || u, now() FROM unnest($1::bigint[]) u",
            users,
        )
    return users


async def _issue_all(env: Env, coupon_id: int, user_ids: list[int], instances: int = 1) -> list[tuple[int, str]]:
    async def one(i: int, user_id: int) -> tuple[int, str]:
        status, body = await env.call(
            "POST", f"/api/v1/coupons/{coupon_id}/issue", {"user_id": user_id}, instance=i % instances
        )
        if status == 201:
            assert (body["coupon_id"], body["user_id"], body["status"]) == (coupon_id, user_id, "AVAILABLE")
        return user_id, "ISSUED" if status == 201 else f"{status} {body['code']}"

    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(user_ids))))


async def _holders(env: Env, coupon_id: int) -> list[int]:
    """The users holding a copy, checked against the database: never more than the quantity, no user twice."""
    async with _db(env) as conn:
        rows = await conn.fetch(
            "SELECT user_id FROM user_coupons WHERE coupon_id = $1 AND user_id IS NOT NULL", coupon_id
        )
        quantity = await conn.fetchval("SELECT total_quantity FROM coupons WHERE coupon_id = $1", coupon_id)
    holders = [row["user_id"] for row in rows]
    assert len(holders) == len(set(holders)) <= quantity
    return holders


async def test_spike_of_known_users_is_batched(coupon_env: Env) -> None:
    env = coupon_env
    issuer = env.servers[0].app[DEPS].issuer
    users = await _known_users(env, 300)
    coupon = await env.create_coupon(total_quantity=100)
    batches, items = issuer.batcher.batches, issuer.batcher.items
    outcomes = await _issue_all(env, coupon["coupon_id"], users)
    assert Counter(o for _, o in outcomes) == Counter({"ISSUED": 100, "409 COUPON_SOLD_OUT": 200})
    holders = await _holders(env, coupon["coupon_id"])
    assert sorted(holders) == sorted(u for u, o in outcomes if o == "ISSUED")
    assert issuer.batcher.items - items == 300  # every request went through the batcher
    assert issuer.batcher.batches - batches < 300  # and shared flushes
    assert not set(users) & set(env.lookups)  # the projection answered, balance was not asked
    assert env.servers[0].app[DEPS].coupons.is_sold_out(coupon["coupon_id"])


async def test_repeats_inside_a_spike_get_one_copy(coupon_env: Env) -> None:
    env = coupon_env
    users = await _known_users(env, 100)
    coupon = await env.create_coupon(total_quantity=50)
    outcomes = await _issue_all(env, coupon["coupon_id"], users * 3)
    assert Counter(o for _, o in outcomes) == Counter(
        {"ISSUED": 50, "409 COUPON_ALREADY_ISSUED": 100, "409 COUPON_SOLD_OUT": 150}
    )
    per_user: dict[int, Counter[str]] = {}
    for user_id, outcome in outcomes:
        per_user.setdefault(user_id, Counter())[outcome] += 1
    holders = set(await _holders(env, coupon["coupon_id"]))
    assert len(holders) == 50
    for user_id, counts in per_user.items():
        expected = {"ISSUED": 1, "409 COUPON_ALREADY_ISSUED": 2} if user_id in holders else {"409 COUPON_SOLD_OUT": 3}
        assert counts == Counter(expected), user_id


async def test_repeats_with_copies_left_get_already_issued(coupon_env: Env) -> None:
    env = coupon_env
    users = await _known_users(env, 60)
    coupon = await env.create_coupon(total_quantity=100)
    outcomes = await _issue_all(env, coupon["coupon_id"], users * 4)
    assert Counter(o for _, o in outcomes) == Counter({"ISSUED": 60, "409 COUPON_ALREADY_ISSUED": 180})
    assert sorted(await _holders(env, coupon["coupon_id"])) == sorted(users)


async def test_unknown_users_inside_batches_are_user_not_found(coupon_env: Env) -> None:
    env = coupon_env
    known = await _known_users(env, 20)
    unseen = [new_user_id() for _ in range(10)]  # exist in balance, not yet in the projection
    missing = [MISSING_FROM + 1000 + n for n in range(10)]
    coupon = await env.create_coupon(total_quantity=15)
    cid = coupon["coupon_id"]
    issuer = env.servers[0].app[DEPS].issuer
    alone = issuer.alone
    mixed = [u for trio in zip(known[:10], unseen, missing, strict=True) for u in trio] + known[10:]
    outcomes = dict(await _issue_all(env, cid, mixed))
    assert Counter(outcomes.values()) == Counter({"ISSUED": 15, "409 COUPON_SOLD_OUT": 15, "404 USER_NOT_FOUND": 10})
    assert all(outcomes[u] == "404 USER_NOT_FOUND" for u in missing)
    assert issuer.alone - alone >= 20  # the ids the projection did not hold were asked about alone
    assert env.servers[0].app[DEPS].coupons.is_sold_out(cid)
    holders = set(await _holders(env, cid))
    # sold out now: the batch answers from the database, unknown ids still come first
    later_known = await _known_users(env, 5)
    again = known + unseen + missing + later_known + [MISSING_FROM + 2000 + n for n in range(5)]
    outcomes = dict(await _issue_all(env, cid, again))
    for user_id, outcome in outcomes.items():
        if user_id >= MISSING_FROM:
            assert outcome == "404 USER_NOT_FOUND", user_id
        elif user_id in holders:
            assert outcome == "409 COUPON_ALREADY_ISSUED", user_id
        else:
            assert outcome == "409 COUPON_SOLD_OUT", user_id


async def test_two_instances_racing_on_one_coupon(coupon_env: Env) -> None:
    env = coupon_env
    settings = env.settings.model_copy(update={"instance_id": "coupon-b"})
    await start_instance(env, settings)
    try:
        users = await _known_users(env, 300)
        coupon = await env.create_coupon(total_quantity=200)
        # every user twice, once on each instance: their batches race for the same users and slots
        outcomes = await _issue_all(env, coupon["coupon_id"], [u for u in users for _ in range(2)], instances=2)
        assert Counter(o for _, o in outcomes) == Counter(
            {"ISSUED": 200, "409 COUPON_ALREADY_ISSUED": 200, "409 COUPON_SOLD_OUT": 200}
        )
        holders = await _holders(env, coupon["coupon_id"])
        assert sorted(holders) == sorted(u for u, o in outcomes if o == "ISSUED")
    finally:
        server = env.servers.pop()
        env.urls.pop()
        await server.close()


async def test_a_slot_locked_elsewhere_does_not_stall_a_batch(coupon_env: Env) -> None:
    env = coupon_env
    users = await _known_users(env, 50)
    coupon = await env.create_coupon(total_quantity=100)
    cid = coupon["coupon_id"]
    issuer = env.servers[0].app[DEPS].issuer
    alone = issuer.alone
    async with _db(env) as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            locked = await conn.fetch(
                "SELECT slot_no FROM user_coupons WHERE coupon_id = $1 AND user_id IS NULL "
                "ORDER BY slot_no LIMIT 10 FOR UPDATE",
                cid,
            )
            assert [r["slot_no"] for r in locked] == list(range(1, 11))
            # the batches skip the held rows; a batch waiting on them would never finish while we hold them
            outcomes = await asyncio.wait_for(_issue_all(env, cid, users), timeout=20)
            assert Counter(o for _, o in outcomes) == Counter({"ISSUED": 50})
            assert issuer.alone == alone  # all settled by batches (enough unlocked copies)
        finally:
            await tx.rollback()
        taken = await conn.fetch(
            "SELECT slot_no FROM user_coupons WHERE coupon_id = $1 AND user_id IS NOT NULL ORDER BY slot_no", cid
        )
    assert [r["slot_no"] for r in taken] == list(range(11, 61))
    assert len(await _holders(env, cid)) == 50


async def test_sold_out_is_only_said_when_every_copy_is_taken(coupon_env: Env) -> None:
    """Copies a batch cannot take because another transaction holds them are waited for (alone),
    not answered COUPON_SOLD_OUT: when that transaction rolls back, the waiting users get them."""
    env = coupon_env
    users = await _known_users(env, 10)
    coupon = await env.create_coupon(total_quantity=10)
    cid = coupon["coupon_id"]
    async with _db(env) as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.fetch(
                "SELECT 1 FROM user_coupons WHERE coupon_id = $1 AND user_id IS NULL "
                "ORDER BY slot_no LIMIT 5 FOR UPDATE",
                cid,
            )
            spike = asyncio.create_task(_issue_all(env, cid, users))
            deadline = asyncio.get_running_loop().time() + 20
            async with _db(env) as other:
                while (
                    await other.fetchval(
                        "SELECT count(*) FROM user_coupons WHERE coupon_id = $1 AND user_id IS NOT NULL", cid
                    )
                    < 5
                ):
                    assert asyncio.get_running_loop().time() < deadline, "the free copies were not issued"
                    await asyncio.sleep(0.05)
            assert not spike.done()  # the other five wait for the held rows
        finally:
            await tx.rollback()
    outcomes = await asyncio.wait_for(spike, timeout=20)
    assert Counter(o for _, o in outcomes) == Counter({"ISSUED": 10})
    assert sorted(await _holders(env, cid)) == sorted(users)
