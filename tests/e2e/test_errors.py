"""Every failure code of the contract, through the gateway; a failed order leaves nothing applied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import Api, assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MISSING = 999_999_999


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/api/v1/users/{MISSING}", "USER_NOT_FOUND"),
        (f"/api/v1/users/{MISSING}/balance", "USER_NOT_FOUND"),
        (f"/api/v1/users/{MISSING}/balance/history", "USER_NOT_FOUND"),
        (f"/api/v1/users/{MISSING}/coupons", "USER_NOT_FOUND"),
        (f"/api/v1/users/{MISSING}/orders", "USER_NOT_FOUND"),
        (f"/api/v1/products/{MISSING}", "PRODUCT_NOT_FOUND"),
        (f"/api/v1/coupons/{MISSING}", "COUPON_NOT_FOUND"),
        (f"/api/v1/orders/{uuid.uuid4()}", "ORDER_NOT_FOUND"),
        ("/api/v1/no-such-route", "NOT_FOUND"),
    ],
)
async def test_not_found_codes(api: Api, path: str, code: str) -> None:
    status, data, _ = await api.call("GET", path)
    assert_problem(status, data, 404, code)


@pytest.mark.asyncio
async def test_admin_routes_need_the_token(api: Api) -> None:
    for headers in ({}, {"X-Admin-Token": "wrong"}):
        status, data, _ = await api.call(
            "POST", "/api/v1/admin/products", {"name": "x", "price": 1, "stock": 1}, headers=headers
        )
        assert_problem(status, data, 401, "UNAUTHORIZED")
        status, data, _ = await api.call("POST", "/api/v1/admin/rankings/rebuild", headers=headers)
        assert_problem(status, data, 401, "UNAUTHORIZED")
    assert (await api.call("POST", "/api/v1/admin/rankings/rebuild", headers=api.admin))[0] < 300


@pytest.mark.asyncio
async def test_balance_limit(api: Api) -> None:
    user = await api.user(balance=10_000_000)
    status, data, _ = await api.call("POST", f"/api/v1/users/{user}/balance/charge", {"amount": 1})
    assert_problem(status, data, 409, "BALANCE_LIMIT_EXCEEDED")
    assert await api.balance(user) == 10_000_000


@pytest.mark.asyncio
async def test_coupon_issue_failures(api: Api) -> None:
    first, second = await api.user(), await api.user()
    coupon = await api.coupon(total_quantity=1)
    await api.issue(coupon, first)
    status, data, _ = await api.call("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": first})
    assert_problem(status, data, 409, "COUPON_ALREADY_ISSUED")
    status, data, _ = await api.call("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": second})
    assert_problem(status, data, 409, "COUPON_SOLD_OUT")
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = await api.coupon(issue_starts_at=later)
    status, data, _ = await api.call("POST", f"/api/v1/coupons/{future}/issue", {"user_id": second})
    assert_problem(status, data, 409, "COUPON_NOT_ISSUABLE")
    status, data, _ = await api.call("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": MISSING})
    assert_problem(status, data, 404, "USER_NOT_FOUND")
    status, data, _ = await api.call("POST", f"/api/v1/coupons/{MISSING}/issue", {"user_id": first})
    assert_problem(status, data, 404, "COUPON_NOT_FOUND")


async def _failed_order(api: Api, body: dict, code: str) -> None:
    status, data, _ = await api.call("POST", "/api/v1/orders", body)
    assert_problem(status, data, 409, code)
    assert data["order_status"] == "FAILED" and data["order_id"]
    order = await api.ok("GET", f"/api/v1/orders/{data['order_id']}")
    assert (order["status"], order["failure_code"]) == ("FAILED", code)


@pytest.mark.asyncio
async def test_order_failures_leave_nothing_applied(api: Api) -> None:
    user = await api.user(balance=5_000)
    product = await api.product(price=2_000, stock=3)
    coupon = await api.coupon(discount_value=500)
    user_coupon = await api.issue(coupon, user)

    # INSUFFICIENT_BALANCE: 3 x 2000 = 6000 > 5000 (coupon reserved first, then released)
    await _failed_order(
        api,
        {"user_id": user, "items": [{"product_id": product, "quantity": 3}], "user_coupon_id": user_coupon},
        "INSUFFICIENT_BALANCE",
    )
    # OUT_OF_STOCK: balance deducted, then refunded
    rich = await api.user(balance=100_000)
    await _failed_order(api, {"user_id": rich, "items": [{"product_id": product, "quantity": 4}]}, "OUT_OF_STOCK")
    assert await api.balance(rich) == 100_000
    # COUPON_UNAVAILABLE: someone else's coupon
    await _failed_order(
        api,
        {"user_id": rich, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": user_coupon},
        "COUPON_UNAVAILABLE",
    )
    # PRODUCT_NOT_SELLABLE
    gone = await api.product(price=100, stock=5)
    await api.ok("PATCH", f"/api/v1/admin/products/{gone}", {"status": "DISCONTINUED"}, headers=api.admin)
    orders_before = len((await api.ok("GET", f"/api/v1/users/{rich}/orders?limit=100"))["items"])
    status, data, _ = await api.call(
        "POST", "/api/v1/orders", {"user_id": rich, "items": [{"product_id": gone, "quantity": 1}]}
    )
    assert_problem(status, data, 409, "PRODUCT_NOT_SELLABLE")
    if "order_id" in data:  # refused by the saga: a FAILED order
        assert data["order_status"] == "FAILED"
    else:  # refused up front (order_service documents this): no order at all
        after = (await api.ok("GET", f"/api/v1/users/{rich}/orders?limit=100"))["items"]
        assert len(after) == orders_before
    assert await api.stock(gone) == 5

    assert await api.balance(user) == 5_000 and await api.balance(rich) == 100_000
    assert await api.stock(product) == 3
    coupons = await api.ok("GET", f"/api/v1/users/{user}/coupons")
    assert [(c["user_coupon_id"], c["status"]) for c in coupons["items"]] == [(user_coupon, "AVAILABLE")]
    history = (await api.ok("GET", f"/api/v1/users/{rich}/balance/history"))["items"]
    assert sum(h["amount"] for h in history if h["type"] == "USE") == sum(
        h["amount"] for h in history if h["type"] == "REFUND"
    )
    # a used coupon cannot be used twice
    order = await api.ok(
        "POST",
        "/api/v1/orders",
        {"user_id": user, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": user_coupon},
        expect=201,
    )
    assert order["paid_amount"] == 1_500
    await _failed_order(
        api,
        {"user_id": user, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": user_coupon},
        "COUPON_UNAVAILABLE",
    )
    assert await api.balance(user) == 3_500 and await api.stock(product) == 2
