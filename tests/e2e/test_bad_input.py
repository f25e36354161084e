"""Bad input through the gateway: a 4xx problem document, never a 5xx, and nothing changed."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HUGE = 10**30


@pytest.mark.asyncio
async def test_bad_input_is_4xx_and_changes_nothing(api: Api) -> None:
    user = await api.user(balance=10_000)
    product = await api.product(price=1_000, stock=5)
    coupon = await api.coupon()
    charge = f"/api/v1/users/{user}/balance/charge"
    cases: list[tuple[str, str, object, bytes | None]] = [
        ("POST", "/api/v1/users", None, b"{not json"),
        ("POST", "/api/v1/users", None, b""),
        ("POST", "/api/v1/users", {"name": 5}, None),
        ("POST", "/api/v1/users", {"name": ""}, None),
        ("POST", "/api/v1/users", {"name": "x" * 101}, None),
        ("POST", "/api/v1/users", [1, 2], None),
        ("POST", charge, {"amount": "100"}, None),
        ("POST", charge, {"amount": 1.5}, None),
        ("POST", charge, {"amount": -5}, None),
        ("POST", charge, {"amount": 0}, None),
        ("POST", charge, {"amount": HUGE}, None),
        ("POST", charge, {"amount": True}, None),
        ("POST", charge, {}, None),
        ("POST", charge, None, b'{"amount": 100'),
        ("POST", "/api/v1/users/abc/balance/charge", {"amount": 1}, None),
        ("POST", "/api/v1/users/-1/balance/charge", {"amount": 1}, None),
        ("POST", f"/api/v1/users/{HUGE}/balance/charge", {"amount": 1}, None),
        ("POST", "/api/v1/users/999999999/balance/charge", {"amount": 1}, None),
        ("GET", f"/api/v1/users/{user}/balance/history?cursor=%%%", None, None),
        ("GET", f"/api/v1/users/{user}/balance/history?limit=0", None, None),
        ("GET", "/api/v1/products?limit=1000", None, None),
        ("GET", "/api/v1/products?status=NOPE", None, None),
        ("GET", "/api/v1/rankings/top-products?days=31", None, None),
        ("GET", "/api/v1/rankings/top-products?days=x", None, None),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": "x"}, None),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": HUGE}, None),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": -1}, None),
        ("POST", "/api/v1/admin/products", {"name": "x", "price": -1, "stock": 1}, None),
        ("POST", "/api/v1/admin/products", {"name": "x", "price": HUGE, "stock": 1}, None),
        ("PATCH", f"/api/v1/admin/products/{product}", {"stock": -3}, None),
        ("PATCH", f"/api/v1/admin/products/{product}", {"price": "free"}, None),
        ("POST", "/api/v1/admin/coupons", {"name": "c", "discount_type": "RATE", "discount_value": 101,
                                            "total_quantity": 1, "valid_days": 1}, None),
        ("POST", "/api/v1/admin/coupons", {"name": "c", "discount_type": "FIXED", "discount_value": 0,
                                            "total_quantity": 1, "valid_days": 1}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": []}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 0}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1001}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": HUGE}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1},
                                                               {"product_id": product, "quantity": 1}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": "1"}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": 999999999, "quantity": 1}]}, None),
        ("POST", "/api/v1/orders", {"user_id": 999999999, "items": [{"product_id": product, "quantity": 1}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1}],
                                    "user_coupon_id": "seven"}, None),
        ("POST", "/api/v1/orders", None, b'{"user_id": 1, "items": [}'),
        ("POST", "/api/v1/orders", None, b"x" * (1024 * 1024 + 10)),
    ]
    failures = []
    for method, path, body, raw in cases:
        status, data, headers = await api.call(method, path, body, raw=raw, headers=api.admin)
        ok = 400 <= status < 500 and isinstance(data, dict) and data.get("code") and \
            headers.get("Content-Type", "").startswith("application/problem+json")
        if not ok:
            failures.append((method, path, body if raw is None else raw[:40], status, data))
    assert not failures, "\n".join(map(repr, failures))
    assert await api.balance(user) == 10_000
    assert await api.stock(product) == 5
    assert (await api.ok("GET", f"/api/v1/users/{user}/orders"))["items"] == []
    assert (await api.ok("GET", f"/api/v1/coupons/{coupon}"))["issued_quantity"] == 0
    history = (await api.ok("GET", f"/api/v1/users/{user}/balance/history"))["items"]
    assert [h["type"] for h in history] == ["CHARGE"]
