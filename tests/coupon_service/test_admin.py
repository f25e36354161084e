"""Creating coupons: validation and what the contract shows."""

from __future__ import annotations

import pytest

from tests.coupon_service.conftest import Env

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

VALID = {"name": "welcome", "discount_type": "RATE", "discount_value": 10, "total_quantity": 5, "valid_days": 3}


async def test_create_and_show(coupon_env: Env) -> None:
    coupon = await coupon_env.create_coupon(**VALID, min_order_amount=10000)
    assert coupon["status"] == "ISSUABLE" and coupon["issued_quantity"] == 0
    assert coupon["remaining_quantity"] == 5 and coupon["min_order_amount"] == 10000
    assert coupon["created_at"].endswith("Z")
    status, shown = await coupon_env.call("GET", f"/api/v1/coupons/{coupon['coupon_id']}")
    assert status == 200 and shown == coupon


@pytest.mark.parametrize("change", [
    {"discount_value": 0}, {"discount_value": 101}, {"discount_type": "FIXED", "discount_value": 0},
    {"discount_type": "PERCENT"}, {"total_quantity": 0}, {"total_quantity": 1_000_001}, {"valid_days": 0},
    {"min_order_amount": -1}, {"name": ""}, {"discount_value": "10"},
    {"issue_starts_at": "2026-02-01T00:00:00Z", "issue_ends_at": "2026-01-01T00:00:00Z"},
    {"issue_starts_at": "2026-02-01T00:00:00"},
])
async def test_invalid_coupons_are_400(coupon_env: Env, change: dict) -> None:
    status, problem = await coupon_env.call("POST", "/api/v1/admin/coupons", {**VALID, **change})
    assert (status, problem["code"]) == (400, "VALIDATION_ERROR"), problem
    assert problem["errors"]


async def test_routes_are_documented(coupon_env: Env) -> None:
    status, doc = await coupon_env.call("GET", "/api/docs/openapi.json")
    assert status == 200
    assert {"/api/v1/admin/coupons", "/api/v1/coupons/{coupon_id}", "/api/v1/coupons/{coupon_id}/issue",
            "/api/v1/users/{user_id}/coupons"} <= set(doc["paths"])
