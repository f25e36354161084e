"""The admin saga view through the gateway, on a real cluster."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Api, assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.asyncio
async def test_a_failed_order_explains_itself_through_the_gateway(api: Api) -> None:
    user = await api.user(balance=1_000)
    product = await api.product(price=5_000, stock=3)
    status, problem, _ = await api.call(
        "POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1}]}
    )
    assert status == 409 and problem["code"] == "INSUFFICIENT_BALANCE", problem
    order_id = problem["order_id"]

    status, data, _ = await api.call("GET", f"/api/v1/admin/orders/{order_id}/saga")
    assert_problem(status, data, 401, "UNAUTHORIZED")
    view = await api.ok("GET", f"/api/v1/admin/orders/{order_id}/saga", headers=api.admin)
    assert view["status"] == "FAILED" and view["step"] == "FAILED" and view["deadline"] is None
    steps = [(h["kind"], h["name"]) for h in view["history"]]
    assert steps[0] == ("command", "DeductBalance")
    assert ("reply", "BalanceDeductionFailed") in steps and steps[-1] == ("outcome", "FAILED")
    assert view["history"][-1]["detail"]["failure_code"] == "INSUFFICIENT_BALANCE"

    status, data, _ = await api.call(
        "GET", "/api/v1/admin/orders/00000000-0000-0000-0000-000000000000/saga", headers=api.admin
    )
    assert_problem(status, data, 404, "ORDER_NOT_FOUND")
    page = await api.ok("GET", "/api/v1/admin/sagas?limit=5", headers=api.admin)
    assert set(page) == {"items", "next_cursor"} and order_id not in {i["order_id"] for i in page["items"]}
    status, data, _ = await api.call("GET", "/api/v1/admin/sagas?step=DONE", headers=api.admin)
    assert_problem(status, data, 400, "VALIDATION_ERROR")
