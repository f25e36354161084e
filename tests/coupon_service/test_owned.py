"""A user's coupons: usable by default, every one with status=ALL, expired shown as EXPIRED."""

from __future__ import annotations

import asyncpg
import pytest

from tests.coupon_service.conftest import MISSING_FROM, Env, new_user_id

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def _issue(env: Env, user: int, **terms) -> dict:
    coupon = await env.create_coupon(total_quantity=3, **terms)
    status, body = await env.call("POST", f"/api/v1/coupons/{coupon['coupon_id']}/issue", {"user_id": user})
    assert status == 201, body
    return body


async def test_default_shows_usable_and_all_shows_expired(coupon_env: Env) -> None:
    env = coupon_env
    user = new_user_id()
    fresh = await _issue(env, user, name="fresh", discount_type="RATE", discount_value=15)
    old = await _issue(env, user, name="old")
    conn = await asyncpg.connect(env.settings.database_url)
    try:
        await conn.execute(
            "UPDATE user_coupons SET issued_at = now() - interval '10 days', expires_at = now() - interval '3 days'"
            " WHERE user_coupon_id = $1",
            old["user_coupon_id"],
        )
    finally:
        await conn.close()
    status, page = await env.call("GET", f"/api/v1/users/{user}/coupons")
    assert status == 200 and page["next_cursor"] is None
    assert [(i["user_coupon_id"], i["status"]) for i in page["items"]] == [(fresh["user_coupon_id"], "AVAILABLE")]
    item = page["items"][0]
    assert (item["name"], item["discount_type"], item["discount_value"], item["used_at"]) == ("fresh", "RATE", 15, None)
    status, page = await env.call("GET", f"/api/v1/users/{user}/coupons?status=ALL")
    assert [(i["user_coupon_id"], i["status"]) for i in page["items"]] == [
        (fresh["user_coupon_id"], "AVAILABLE"),
        (old["user_coupon_id"], "EXPIRED"),
    ]


async def test_pages_follow_the_cursor(coupon_env: Env) -> None:
    user = new_user_id()
    issued = [await _issue(coupon_env, user) for _ in range(5)]
    seen, cursor = [], None
    for _ in range(4):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = await coupon_env.call("GET", f"/api/v1/users/{user}/coupons{query}")
        assert status == 200 and len(page["items"]) <= 2
        seen += [i["user_coupon_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["user_coupon_id"] for i in reversed(issued)]


@pytest.mark.parametrize(
    "query", ["?status=USED", "?limit=0", "?limit=101", "?limit=x", "?cursor=%%%", "?cursor=bm9wZQ"]
)
async def test_bad_queries_are_400(coupon_env: Env, query: str) -> None:
    status, problem = await coupon_env.call("GET", f"/api/v1/users/{new_user_id()}/coupons{query}")
    assert (status, problem["code"]) == (400, "VALIDATION_ERROR")


async def test_unknown_user_is_404(coupon_env: Env) -> None:
    status, problem = await coupon_env.call("GET", f"/api/v1/users/{MISSING_FROM + 7}/coupons")
    assert (status, problem["code"]) == (404, "USER_NOT_FOUND")
