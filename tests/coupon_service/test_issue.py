"""First come, first served against the real PostgreSQL (and Kafka for the app's consumers)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.coupon_service.conftest import MISSING_FROM, Env, new_user_id, start_instance

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def _spike(env: Env, coupon_id: int, user_ids: list[int], instances: int = 1) -> Counter[str]:
    async def one(i: int, user_id: int) -> str:
        status, body = await env.call(
            "POST", f"/api/v1/coupons/{coupon_id}/issue", {"user_id": user_id}, instance=i % instances
        )
        return "ISSUED" if status == 201 else f"{status} {body['code']}"

    results = await asyncio.gather(*(one(i, u) for i, u in enumerate(user_ids)))
    return Counter(results)


async def _issued(env: Env, coupon_id: int) -> dict:
    status, coupon = await env.call("GET", f"/api/v1/coupons/{coupon_id}")
    assert status == 200
    return coupon


async def _first_come_first_served(env: Env, instances: int) -> None:
    coupon = await env.create_coupon(total_quantity=100)
    outcomes = await _spike(env, coupon["coupon_id"], [new_user_id() for _ in range(1000)], instances)
    assert outcomes == Counter({"ISSUED": 100, "409 COUPON_SOLD_OUT": 900})
    shown = await _issued(env, coupon["coupon_id"])
    assert (shown["issued_quantity"], shown["remaining_quantity"], shown["status"]) == (100, 0, "SOLD_OUT")


async def _once_per_user(env: Env, instances: int) -> None:
    coupon = await env.create_coupon(total_quantity=100)
    user = new_user_id()
    outcomes = await _spike(env, coupon["coupon_id"], [user] * 10, instances)
    assert outcomes == Counter({"ISSUED": 1, "409 COUPON_ALREADY_ISSUED": 9})
    assert (await _issued(env, coupon["coupon_id"]))["issued_quantity"] == 1


async def test_1000_users_for_100_copies_get_exactly_100(coupon_env: Env) -> None:
    await _first_come_first_served(coupon_env, instances=1)


async def test_one_user_sending_10_at_once_gets_one(coupon_env: Env) -> None:
    await _once_per_user(coupon_env, instances=1)


async def test_last_copy_to_one_user_racing_itself(coupon_env: Env) -> None:
    coupon = await coupon_env.create_coupon(total_quantity=1)
    outcomes = await _spike(coupon_env, coupon["coupon_id"], [new_user_id()] * 10)
    assert outcomes == Counter({"ISSUED": 1, "409 COUPON_ALREADY_ISSUED": 9})


async def test_two_instances_on_one_database(coupon_env: Env) -> None:
    settings = coupon_env.settings.model_copy(update={"instance_id": "coupon-b"})
    await start_instance(coupon_env, settings)
    try:
        await _first_come_first_served(coupon_env, instances=2)
        await _once_per_user(coupon_env, instances=2)
    finally:
        server = coupon_env.servers.pop()
        coupon_env.urls.pop()
        await server.close()


async def test_issue_outcomes_in_contract_order(coupon_env: Env) -> None:
    env = coupon_env
    now = datetime.now(UTC)
    user = new_user_id()
    one = await env.create_coupon(total_quantity=1)
    issue = f"/api/v1/coupons/{one['coupon_id']}/issue"
    status, body = await env.call("POST", "/api/v1/coupons/999999999/issue", {"user_id": user})
    assert (status, body["code"]) == (404, "COUPON_NOT_FOUND")
    status, body = await env.call("POST", "/api/v1/coupons/999999999/issue", {"user_id": MISSING_FROM + 1})
    assert (status, body["code"]) == (404, "USER_NOT_FOUND")  # unknown user before unknown coupon
    status, body = await env.call("POST", issue, {"user_id": MISSING_FROM + 1})
    assert (status, body["code"]) == (404, "USER_NOT_FOUND")
    status, body = await env.call("POST", issue, {"user_id": user})
    assert status == 201 and body["status"] == "AVAILABLE" and body["user_id"] == user
    assert body["issued_at"].endswith("Z") and body["expires_at"].endswith("Z")
    status, body = await env.call("POST", issue, {"user_id": user})
    assert (status, body["code"]) == (409, "COUPON_ALREADY_ISSUED")  # also sold out: already issued wins
    status, body = await env.call("POST", issue, {"user_id": new_user_id()})
    assert (status, body["code"]) == (409, "COUPON_SOLD_OUT")
    later = await env.create_coupon(issue_starts_at=(now + timedelta(hours=1)).isoformat())
    status, body = await env.call("POST", f"/api/v1/coupons/{later['coupon_id']}/issue", {"user_id": user})
    assert (status, body["code"]) == (409, "COUPON_NOT_ISSUABLE")
    assert (await _issued(env, later["coupon_id"]))["status"] == "NOT_STARTED"
    ended = await env.create_coupon(
        issue_starts_at=(now - timedelta(hours=2)).isoformat(), issue_ends_at=(now - timedelta(hours=1)).isoformat()
    )
    status, body = await env.call("POST", f"/api/v1/coupons/{ended['coupon_id']}/issue", {"user_id": user})
    assert (status, body["code"]) == (409, "COUPON_NOT_ISSUABLE")
    assert (await _issued(env, ended["coupon_id"]))["status"] == "ENDED"


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "5"},
        {"user_id": 0},
        {"user_id": 1.0},
        {},
        {"user_id": 1, "extra": 1},
    ],
)
async def test_issue_rejects_bad_bodies(coupon_env: Env, body: dict) -> None:
    coupon = await coupon_env.create_coupon(total_quantity=1)
    status, problem = await coupon_env.call("POST", f"/api/v1/coupons/{coupon['coupon_id']}/issue", body)
    assert (status, problem["code"]) == (400, "VALIDATION_ERROR")


async def test_get_unknown_coupon_and_bad_id(coupon_env: Env) -> None:
    status, body = await coupon_env.call("GET", "/api/v1/coupons/987654321")
    assert (status, body["code"]) == (404, "COUPON_NOT_FOUND")
    status, body = await coupon_env.call("GET", "/api/v1/coupons/abc")
    assert (status, body["code"]) == (400, "VALIDATION_ERROR")


async def _hand_out(env: Env, coupon_id: int, user_id: int) -> None:
    """Give the user a copy directly in the database (as if issued while the window was open)."""
    conn = await asyncpg.connect(env.settings.database_url)
    try:
        await conn.execute(
            "UPDATE user_coupons SET user_id = $2, issued_at = now(), expires_at = now() + interval '7 days'"
            " WHERE user_coupon_id = (SELECT min(user_coupon_id) FROM user_coupons"
            " WHERE coupon_id = $1 AND user_id IS NULL)",
            coupon_id,
            user_id,
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("window", ["ended", "not_started"])
async def test_already_issued_before_not_issuable_before_sold_out(coupon_env: Env, window: str) -> None:
    """The design's order: a holder hears ALREADY_ISSUED outside the window; others hear
    NOT_ISSUABLE even when every copy is taken."""
    env = coupon_env
    now = datetime.now(UTC)
    span = (
        {
            "issue_starts_at": (now - timedelta(hours=2)).isoformat(),
            "issue_ends_at": (now - timedelta(hours=1)).isoformat(),
        }
        if window == "ended"
        else {"issue_starts_at": (now + timedelta(hours=1)).isoformat()}
    )
    coupon = await env.create_coupon(total_quantity=1, **span)
    holder = new_user_id()
    await _hand_out(env, coupon["coupon_id"], holder)
    issue = f"/api/v1/coupons/{coupon['coupon_id']}/issue"
    status, body = await env.call("POST", issue, {"user_id": holder})
    assert (status, body["code"]) == (409, "COUPON_ALREADY_ISSUED")
    status, body = await env.call("POST", issue, {"user_id": new_user_id()})
    assert (status, body["code"]) == (409, "COUPON_NOT_ISSUABLE")  # sold out too, but closed first
    status, body = await env.call("POST", issue, {"user_id": MISSING_FROM + 2})
    assert (status, body["code"]) == (404, "USER_NOT_FOUND")
