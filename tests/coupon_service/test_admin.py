"""Creating coupons: validation and what the contract shows."""

from __future__ import annotations

import pytest

from tests.coupon_service.conftest import Env
from tests.support.bad_input import body_mutations, names_field, query_mutations

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

VALID = {"name": "welcome", "discount_type": "RATE", "discount_value": 10, "total_quantity": 5, "valid_days": 3}


async def test_create_and_show(coupon_env: Env) -> None:
    coupon = await coupon_env.create_coupon(**VALID, min_order_amount=10000)
    assert coupon["status"] == "ISSUABLE" and coupon["issued_quantity"] == 0
    assert coupon["remaining_quantity"] == 5 and coupon["min_order_amount"] == 10000
    assert coupon["created_at"].endswith("Z")
    status, shown = await coupon_env.call("GET", f"/api/v1/coupons/{coupon['coupon_id']}")
    assert status == 200 and shown == coupon


@pytest.mark.parametrize(
    "change",
    [
        {"discount_value": 0},
        {"discount_value": 101},
        {"discount_type": "FIXED", "discount_value": 0},
        {"discount_type": "PERCENT"},
        {"total_quantity": 0},
        {"total_quantity": 1_000_001},
        {"total_quantity": 100_001},
        {"valid_days": 0},
        {"min_order_amount": -1},
        {"name": ""},
        {"discount_value": "10"},
        {"issue_starts_at": "2026-02-01T00:00:00Z", "issue_ends_at": "2026-01-01T00:00:00Z"},
        {"issue_starts_at": "2026-02-01T00:00:00"},
        # asyncpg would store these as -infinity/infinity (read back naive: a 500) or overflow
        {"issue_starts_at": "0001-01-01T00:00:00Z"},
        {"issue_starts_at": "0001-01-01T00:00:00+01:00"},
        {"issue_ends_at": "9999-12-31T23:59:59.999999Z"},
        {"issue_ends_at": "9999-12-31T23:00:00-05:00"},
    ],
)
async def test_invalid_coupons_are_400(coupon_env: Env, change: dict) -> None:
    status, problem = await coupon_env.call("POST", "/api/v1/admin/coupons", {**VALID, **change})
    assert (status, problem["code"]) == (400, "VALIDATION_ERROR"), problem
    assert problem["errors"]


async def test_routes_are_documented(coupon_env: Env) -> None:
    status, doc = await coupon_env.call("GET", "/api/docs/openapi.json")
    assert status == 200
    assert {
        "/api/v1/admin/coupons",
        "/api/v1/coupons/{coupon_id}",
        "/api/v1/coupons/{coupon_id}/issue",
        "/api/v1/users/{user_id}/coupons",
    } <= set(doc["paths"])


async def test_huge_integers_and_nul_are_400_naming_the_field_and_change_nothing(coupon_env: Env) -> None:
    coupon = await coupon_env.create_coupon(**VALID)
    full = {
        **VALID,
        "discount_type": "FIXED",
        "discount_value": 100,
        "min_order_amount": 1000,
        "issue_starts_at": "2026-01-01T00:00:00Z",
        "issue_ends_at": "2099-01-01T00:00:00Z",
    }
    cases = [("POST", "/api/v1/admin/coupons", f, b) for f, b in body_mutations(full)]
    cases += [("POST", f"/api/v1/coupons/{coupon['coupon_id']}/issue", f, b) for f, b in body_mutations({"user_id": 1})]
    for method, path, field, body in cases:
        status, problem = await coupon_env.call(method, path, body)
        assert status == 400 and names_field(problem, field), (body, problem)
    for name, query in query_mutations({"status": "ALL", "limit": "5", "cursor": "c1.1"}):
        status, problem = await coupon_env.call("GET", f"/api/v1/users/1/coupons?{query}")
        assert status == 400 and names_field(problem, name), query
    for bad in (f"{coupon['coupon_id']}%00", str(2**63)):
        status, problem = await coupon_env.call("GET", f"/api/v1/coupons/{bad}")
        assert status == 400 and problem["code"] == "VALIDATION_ERROR", bad
    status, shown = await coupon_env.call("GET", f"/api/v1/coupons/{coupon['coupon_id']}")
    assert status == 200 and shown == coupon


async def test_discount_and_minimum_up_to_the_bigint_maximum_are_accepted(coupon_env: Env) -> None:
    coupon = await coupon_env.create_coupon(discount_value=2**63 - 1, min_order_amount=2**63 - 1)
    assert coupon["discount_value"] == coupon["min_order_amount"] == 2**63 - 1


async def test_a_window_at_the_edge_of_the_calendar_is_stored_and_shown(coupon_env: Env) -> None:
    coupon = await coupon_env.create_coupon(
        issue_starts_at="0001-01-01T00:00:01Z", issue_ends_at="9999-12-31T00:00:00Z"
    )
    status, shown = await coupon_env.call("GET", f"/api/v1/coupons/{coupon['coupon_id']}")
    assert status == 200 and shown == coupon and shown["status"] == "ISSUABLE"
