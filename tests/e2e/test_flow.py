"""The main flow of the contract, through the gateway, with every effect checked."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.e2e.conftest import Api, Cluster, eventually
from tests.support.kafka import read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.asyncio
async def test_order_with_coupon_completes_and_every_view_reflects_it(api: Api, cluster: Cluster) -> None:
    user = await api.user(balance=100_000)
    product = await api.product(price=10_000, stock=10)
    listing = await api.ok("GET", "/api/v1/products?limit=100")
    assert product in {p["product_id"] for p in listing["items"]} or listing["next_cursor"]
    coupon = await api.coupon(discount_type="FIXED", discount_value=3_000, total_quantity=5)
    user_coupon = await api.issue(coupon, user)
    assert (await api.ok("GET", f"/api/v1/coupons/{coupon}"))["issued_quantity"] == 1

    status, order, headers = await api.call(
        "POST",
        "/api/v1/orders",
        {
            "user_id": user,
            "items": [{"product_id": product, "quantity": 2}],
            "user_coupon_id": user_coupon,
        },
    )
    assert status == 201, order
    assert order["status"] == "COMPLETED"
    assert (order["total_amount"], order["discount_amount"], order["paid_amount"]) == (20_000, 3_000, 17_000)
    assert order["items"][0]["line_total"] == 20_000 and order["user_coupon_id"] == user_coupon
    assert headers["Location"] == f"/api/v1/orders/{order['order_id']}"
    order_id = order["order_id"]
    # COMPLETED => every effect visible on the first read after the response (API.md)
    coupon_status, balance, stock = await asyncio.gather(
        _coupon_status(api, user, user_coupon), api.balance(user), api.stock(product)
    )
    assert (coupon_status, balance, stock) == (("USED", True), 83_000, 8)

    assert (await api.ok("GET", f"/api/v1/orders/{order_id}"))["status"] == "COMPLETED"
    mine = await api.ok("GET", f"/api/v1/users/{user}/orders")
    assert [o["order_id"] for o in mine["items"]] == [order_id]
    coupons = await api.ok("GET", f"/api/v1/users/{user}/coupons?status=ALL")
    assert [(c["user_coupon_id"], c["status"]) for c in coupons["items"]] == [(user_coupon, "USED")]
    history = (await api.ok("GET", f"/api/v1/users/{user}/balance/history"))["items"]
    assert (history[0]["type"], history[0]["amount"], history[0]["order_id"]) == ("USE", 17_000, order_id)
    assert history[0]["balance_after"] == 83_000 and history[1]["type"] == "CHARGE"

    async def ranked() -> dict | None:
        top = await api.ok("GET", "/api/v1/rankings/top-products?days=1&limit=100")
        return next((i for i in top["items"] if i["product_id"] == product), None)

    item = await eventually(ranked)
    assert item["quantity_sold"] == 2 and item["order_count"] == 1

    topic = f"{cluster.topic_prefix}order.completed"
    records = await read_topic(
        cluster.kafka_bootstrap, topic, until=lambda rs: any(r.key == order_id.encode() for r in rs)
    )
    record = next(r for r in records if r.key == order_id.encode())
    assert record.headers, "order.completed carries headers"
    assert order_id in json.dumps(json.loads(record.value))


@pytest.mark.asyncio
async def test_rate_coupon_and_no_coupon_amounts(api: Api) -> None:
    user = await api.user(balance=50_000)
    product = await api.product(price=3_333, stock=5)
    coupon = await api.coupon(discount_type="RATE", discount_value=15)
    user_coupon = await api.issue(coupon, user)
    body = {"user_id": user, "items": [{"product_id": product, "quantity": 3}], "user_coupon_id": user_coupon}
    order = await api.ok("POST", "/api/v1/orders", body, expect=201)
    assert (order["total_amount"], order["discount_amount"], order["paid_amount"]) == (9_999, 1_499, 8_500)
    plain = await api.ok(
        "POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1}]}, expect=201
    )
    assert (plain["discount_amount"], plain["paid_amount"], plain["user_coupon_id"]) == (0, 3_333, None)
    assert await api.balance(user) == 50_000 - 8_500 - 3_333
    assert await api.stock(product) == 1


@pytest.mark.asyncio
async def test_prefer_respond_async_is_202_then_completes(api: Api) -> None:
    user = await api.user(balance=10_000)
    product = await api.product(price=1_000, stock=3)
    status, order, headers = await api.call(
        "POST",
        "/api/v1/orders",
        {"user_id": user, "items": [{"product_id": product, "quantity": 1}]},
        headers={"Prefer": "respond-async"},
    )
    assert status == 202, order
    assert order["status"] == "PENDING" and headers["Location"].endswith(order["order_id"])

    async def done() -> bool:
        return (await api.ok("GET", f"/api/v1/orders/{order['order_id']}"))["status"] == "COMPLETED"

    await eventually(done)


@pytest.mark.asyncio
async def test_idempotent_charge_and_order(api: Api) -> None:
    user = await api.user()
    key = {"Idempotency-Key": f"charge-{uuid.uuid4()}"}
    first = await api.ok("POST", f"/api/v1/users/{user}/balance/charge", {"amount": 5_000}, headers=key)
    again = await api.ok("POST", f"/api/v1/users/{user}/balance/charge", {"amount": 5_000}, headers=key)
    assert first == again and await api.balance(user) == 5_000
    status, problem, _ = await api.call("POST", f"/api/v1/users/{user}/balance/charge", {"amount": 6_000}, headers=key)
    assert (status, problem["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert await api.balance(user) == 5_000

    product = await api.product(price=1_000, stock=5)
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"user_id": user, "items": [{"product_id": product, "quantity": 2}]}
    first = await api.ok("POST", "/api/v1/orders", body, expect=201, headers=key)
    status, again, _ = await api.call("POST", "/api/v1/orders", body, headers=key)
    assert status in (200, 201) and again["order_id"] == first["order_id"]
    assert await api.balance(user) == 3_000 and await api.stock(product) == 3
    orders = await api.ok("GET", f"/api/v1/users/{user}/orders")
    assert len(orders["items"]) == 1
    body["items"][0]["quantity"] = 1
    status, problem, _ = await api.call("POST", "/api/v1/orders", body, headers=key)
    assert (status, problem["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")


async def _coupon_status(api: Api, user: int, user_coupon: int) -> tuple[str, bool]:
    """``(status, used_at is set)`` of the user's coupon, as the API shows it now."""
    page = await api.ok("GET", f"/api/v1/users/{user}/coupons?status=ALL")
    item = next(c for c in page["items"] if c["user_coupon_id"] == user_coupon)
    return item["status"], item["used_at"] is not None


@pytest.mark.asyncio
async def test_completed_shows_coupon_used_balance_and_stock_on_the_first_read_under_concurrency(api: Api) -> None:
    """Many orders at once, each with its own coupon; the moment each answers 201 its coupon reads
    USED (with used_at), its balance is deducted and its stock taken: no later catch-up."""
    product = await api.product(price=1_000, stock=1_000)
    coupon = await api.coupon(discount_value=100, total_quantity=100)
    completed: list[str] = []

    async def order_and_look(user: int, user_coupon: int) -> None:
        body = {"user_id": user, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": user_coupon}
        status, order, _ = await api.call("POST", "/api/v1/orders", body)
        assert status == 201 and order["status"] == "COMPLETED", order
        completed.append(order["order_id"])
        at_least = len(completed)  # orders (this one included) that have taken their unit
        coupon_status, balance, stock = await asyncio.gather(
            _coupon_status(api, user, user_coupon), api.balance(user), api.stock(product)
        )
        assert coupon_status == ("USED", True), (user, coupon_status)
        assert balance == 10_000 - 900, (user, balance)
        assert stock <= 1_000 - at_least, (user, stock)

    for _ in range(3):
        users = await asyncio.gather(*(api.user(balance=10_000) for _ in range(12)))
        held = await asyncio.gather(*(api.issue(coupon, u) for u in users))
        await asyncio.gather(*(order_and_look(u, c) for u, c in zip(users, held, strict=True)))
    assert await api.stock(product) == 1_000 - 36


@pytest.mark.asyncio
async def test_a_failed_order_shows_nothing_kept_and_gives_the_coupon_back(api: Api) -> None:
    """Failed at the stock step, after the coupon and the balance were taken: on the first reads
    after the 409 the coupon is AVAILABLE again (no used_at), the balance whole, and the order
    shows discount_amount and paid_amount 0 everywhere."""
    user = await api.user(balance=50_000)
    product = await api.product(price=2_000, stock=1)
    user_coupon = await api.issue(await api.coupon(discount_value=500), user)
    body = {"user_id": user, "items": [{"product_id": product, "quantity": 2}], "user_coupon_id": user_coupon}
    status, problem, _ = await api.call("POST", "/api/v1/orders", body)
    assert (status, problem["code"], problem["order_status"]) == (409, "OUT_OF_STOCK", "FAILED"), problem
    coupon_status, balance, stock = await asyncio.gather(
        _coupon_status(api, user, user_coupon), api.balance(user), api.stock(product)
    )
    assert (coupon_status, balance, stock) == (("AVAILABLE", False), 50_000, 1)
    order = await api.ok("GET", f"/api/v1/orders/{problem['order_id']}")
    listed = (await api.ok("GET", f"/api/v1/users/{user}/orders"))["items"]
    for shown in (order, *listed):
        assert (shown["status"], shown["discount_amount"], shown["paid_amount"]) == ("FAILED", 0, 0), shown
    assert order["total_amount"] == 4_000


@pytest.mark.asyncio
async def test_one_coupon_in_two_concurrent_orders_is_used_by_one(api: Api) -> None:
    """While an order is in flight its coupon cannot be used by another order."""
    user = await api.user(balance=50_000)
    product = await api.product(price=1_000, stock=10)
    user_coupon = await api.issue(await api.coupon(discount_value=300), user)
    body = {"user_id": user, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": user_coupon}
    results = await asyncio.gather(*(api.call("POST", "/api/v1/orders", body) for _ in range(2)))
    outcomes = sorted((status, data.get("code") or data.get("status")) for status, data, _ in results)
    assert outcomes == [(201, "COMPLETED"), (409, "COUPON_UNAVAILABLE")], outcomes
    assert await _coupon_status(api, user, user_coupon) == ("USED", True)
    assert await api.balance(user) == 50_000 - 700 and await api.stock(product) == 9


@pytest.mark.asyncio
async def test_idempotency_keys_are_scoped_to_the_user(api: Api) -> None:
    product = await api.product(price=1_000, stock=5)
    first, second = await api.user(balance=5_000), await api.user(balance=5_000)
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    mine = await api.ok(
        "POST",
        "/api/v1/orders",
        {"user_id": first, "items": [{"product_id": product, "quantity": 1}]},
        expect=201,
        headers=key,
    )
    theirs = await api.ok(
        "POST",
        "/api/v1/orders",
        {"user_id": second, "items": [{"product_id": product, "quantity": 2}]},
        expect=201,
        headers=key,
    )
    assert mine["order_id"] != theirs["order_id"]
    charged = [
        await api.ok("POST", f"/api/v1/users/{u}/balance/charge", {"amount": 100}, headers=key) for u in (first, second)
    ]
    assert [c["balance"] for c in charged] == [4_100, 3_100]
