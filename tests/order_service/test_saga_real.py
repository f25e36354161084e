"""The payment saga with the REAL balance, catalog and coupon services (in-process, real Kafka/PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from balance_service.app import create_app as balance_app
from balance_service.config import Settings as BalanceSettings
from catalog_service.app import create_app as catalog_app
from catalog_service.config import Settings as CatalogSettings
from coupon_service.app import create_app as coupon_app
from coupon_service.config import Settings as CouponSettings
from order_service.app import create_app as order_app
from order_service.config import Settings as OrderSettings
from shared.wiring import CONSUMERS
from tests.order_service.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Cluster:
    """The four services on free ports, one HTTP session to talk to them."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.runners: list[web.AppRunner] = []
        self.http: aiohttp.ClientSession | None = None

    async def serve(self, name: str, app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        async with asyncio.timeout(60):
            for consumer in app[CONSUMERS]:
                await consumer.assigned.wait()
        self.urls[name] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return self.urls[name]

    async def call(self, method: str, service: str, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        assert self.http is not None
        async with self.http.request(method, self.urls[service] + path, json=json, **kw) as resp:
            return resp.status, await resp.json()

    # --- arranging ------------------------------------------------------------------------
    async def user(self, balance: int) -> int:
        status, body = await self.call("POST", "balance", "/api/v1/users", {"name": "buyer"})
        assert status == 201, body
        if balance:
            status, _ = await self.call(
                "POST", "balance", f"/api/v1/users/{body['user_id']}/balance/charge", {"amount": balance}
            )
            assert status == 200
        return body["user_id"]

    async def product(self, price: int, stock: int) -> int:
        status, body = await self.call(
            "POST", "catalog", "/api/v1/admin/products", {"name": f"p{price}", "price": price, "stock": stock}
        )
        assert status == 201, body
        return body["product_id"]

    async def coupon(self, discount: int = 500, quantity: int = 100) -> int:
        status, body = await self.call(
            "POST",
            "coupon",
            "/api/v1/admin/coupons",
            {
                "name": "off",
                "discount_type": "FIXED",
                "discount_value": discount,
                "total_quantity": quantity,
                "valid_days": 7,
            },
        )
        assert status == 201, body
        return body["coupon_id"]

    async def issue(self, coupon_id: int, user_id: int) -> int:
        status, body = await self.call("POST", "coupon", f"/api/v1/coupons/{coupon_id}/issue", {"user_id": user_id})
        assert status == 201, body
        return body["user_coupon_id"]

    # --- observing ------------------------------------------------------------------------
    async def balance(self, user_id: int) -> int:
        return (await self.call("GET", "balance", f"/api/v1/users/{user_id}/balance"))[1]["balance"]

    async def history(self, user_id: int) -> list[dict]:
        return (await self.call("GET", "balance", f"/api/v1/users/{user_id}/balance/history"))[1]["items"]

    async def stock(self, product_id: int) -> int:
        return (await self.call("GET", "catalog", f"/api/v1/products/{product_id}"))[1]["stock"]

    async def coupon_status(self, user_id: int, user_coupon_id: int) -> str:
        _, body = await self.call("GET", "coupon", f"/api/v1/users/{user_id}/coupons", params={"status": "ALL"})
        return next(c["status"] for c in body["items"] if c["user_coupon_id"] == user_coupon_id)

    async def order(self, body: dict) -> tuple[int, dict]:
        """Place an order and return its final state (polling when the answer was 202)."""
        status, got = await self.call("POST", "order", "/api/v1/orders", body)
        if status == 202:
            got = await eventually(lambda: self._finished(got["order_id"]), timeout=60)
            status = 201 if got["status"] == "COMPLETED" else 409
            got = got if status == 201 else {**got, "code": got["failure_code"]}
        return status, got

    async def _finished(self, order_id: str) -> dict | None:
        _, got = await self.call("GET", "order", f"/api/v1/orders/{order_id}")
        return got if got["status"] != "PENDING" else None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(new_database, kafka_bootstrap, topic_prefix):
    prefix = f"{topic_prefix}real."
    common = {
        "kafka_topic_prefix": prefix,
        "kafka_bootstrap": kafka_bootstrap,
        "port": 0,
        "access_log": False,
        "outbox_poll_interval_s": 0.2,
    }
    c = Cluster()
    c.http = aiohttp.ClientSession()
    try:
        balance = await c.serve(
            "balance", balance_app(BalanceSettings(database_url=await new_database("balance"), **common))
        )
        await c.serve("catalog", catalog_app(CatalogSettings(database_url=await new_database("catalog"), **common)))
        await c.serve(
            "coupon",
            coupon_app(CouponSettings(database_url=await new_database("coupon"), balance_url=balance, **common)),
        )
        await c.serve(
            "order",
            order_app(
                OrderSettings(
                    database_url=await new_database("order"),
                    balance_url=balance,
                    catalog_url=c.urls["catalog"],
                    order_wait_timeout_s=15.0,
                    saga_step_timeout_s=5.0,
                    **common,
                )
            ),
        )
        yield c
    finally:
        for runner in reversed(c.runners):
            await runner.cleanup()
        await c.http.close()


async def test_order_with_coupon_applies_each_effect_once(cluster: Cluster) -> None:
    user = await cluster.user(10_000)
    p1, p2 = await cluster.product(1000, 5), await cluster.product(2500, 3)
    uc = await cluster.issue(await cluster.coupon(500), user)
    status, body = await cluster.order(
        {
            "user_id": user,
            "user_coupon_id": uc,
            "items": [{"product_id": p1, "quantity": 2}, {"product_id": p2, "quantity": 1}],
        }
    )
    assert status == 201, body
    assert (body["total_amount"], body["discount_amount"], body["paid_amount"]) == (4500, 500, 4000)
    assert await cluster.balance(user) == 6000
    uses = [h for h in await cluster.history(user) if h["type"] == "USE"]
    assert len(uses) == 1 and uses[0]["amount"] == 4000 and uses[0]["order_id"] == body["order_id"]
    assert (await cluster.stock(p1), await cluster.stock(p2)) == (3, 2)
    assert await eventually(lambda: _coupon_is(cluster, user, uc, "USED"))


async def _coupon_is(cluster: Cluster, user: int, uc: int, status: str) -> bool:
    return await cluster.coupon_status(user, uc) == status


async def test_insufficient_balance_leaves_everything_as_it_was(cluster: Cluster) -> None:
    user = await cluster.user(1000)
    product = await cluster.product(3000, 5)
    uc = await cluster.issue(await cluster.coupon(500), user)
    status, body = await cluster.order(
        {"user_id": user, "user_coupon_id": uc, "items": [{"product_id": product, "quantity": 1}]}
    )
    assert status == 409 and body["code"] == "INSUFFICIENT_BALANCE", body
    assert await cluster.balance(user) == 1000 and await cluster.stock(product) == 5
    assert await cluster.coupon_status(user, uc) == "AVAILABLE"


async def test_out_of_stock_on_the_last_line_refunds_and_releases(cluster: Cluster) -> None:
    user = await cluster.user(10_000)
    p1, p2 = await cluster.product(1000, 5), await cluster.product(1000, 1)
    uc = await cluster.issue(await cluster.coupon(500), user)
    status, body = await cluster.order(
        {
            "user_id": user,
            "user_coupon_id": uc,
            "items": [{"product_id": p1, "quantity": 1}, {"product_id": p2, "quantity": 2}],
        }
    )
    assert status == 409 and body["code"] == "OUT_OF_STOCK", body
    assert await cluster.balance(user) == 10_000
    assert (await cluster.stock(p1), await cluster.stock(p2)) == (5, 1)
    assert await cluster.coupon_status(user, uc) == "AVAILABLE"
    kinds = sorted(h["type"] for h in await cluster.history(user))
    assert kinds == ["CHARGE", "REFUND", "USE"]


async def test_coupon_of_another_user_or_already_used_charges_nothing(cluster: Cluster) -> None:
    owner, other = await cluster.user(10_000), await cluster.user(10_000)
    product = await cluster.product(1000, 10)
    uc = await cluster.issue(await cluster.coupon(500), owner)
    status, body = await cluster.order(
        {"user_id": other, "user_coupon_id": uc, "items": [{"product_id": product, "quantity": 1}]}
    )
    assert status == 409 and body["code"] == "COUPON_UNAVAILABLE", body
    assert await cluster.balance(other) == 10_000 and await cluster.stock(product) == 10
    status, _ = await cluster.order(
        {"user_id": owner, "user_coupon_id": uc, "items": [{"product_id": product, "quantity": 1}]}
    )
    assert status == 201
    status, body = await cluster.order(
        {"user_id": owner, "user_coupon_id": uc, "items": [{"product_id": product, "quantity": 1}]}
    )
    assert status == 409 and body["code"] == "COUPON_UNAVAILABLE", body
    assert await cluster.balance(owner) == 9_500 and await cluster.stock(product) == 9


async def test_fifty_users_racing_for_the_last_ten_units(cluster: Cluster) -> None:
    product = await cluster.product(1000, 10)
    coupon = await cluster.coupon(300, quantity=50)
    users = [await cluster.user(5_000) for _ in range(50)]
    coupons = {user: await cluster.issue(coupon, user) for user in users}
    results = await asyncio.gather(
        *(
            cluster.order(
                {"user_id": u, "user_coupon_id": coupons[u], "items": [{"product_id": product, "quantity": 1}]}
            )
            for u in users
        )
    )
    completed = [u for u, (status, _) in zip(users, results, strict=False) if status == 201]
    failed = [(u, body) for u, (status, body) in zip(users, results, strict=False) if status != 201]
    assert len(completed) == 10 and len(failed) == 40
    assert {body["code"] for _, body in failed} == {"OUT_OF_STOCK"}
    assert await cluster.stock(product) == 0
    for user in completed:
        assert await cluster.balance(user) == 4_300
    for user, _ in failed:
        assert await cluster.balance(user) == 5_000
        assert await cluster.coupon_status(user, coupons[user]) == "AVAILABLE"


# --- dead letters ---------------------------------------------------------------------------

_REJECT = """
CREATE OR REPLACE FUNCTION reject_amounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.type = 'USE' AND NEW.amount = 4321) OR (NEW.type = 'REFUND' AND NEW.amount = 8644) THEN
        RAISE EXCEPTION 'rejected % of %', NEW.type, NEW.amount;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS reject_amounts ON balance_history;
CREATE TRIGGER reject_amounts BEFORE INSERT ON balance_history FOR EACH ROW EXECUTE FUNCTION reject_amounts();
"""


def _balance_pool(cluster: Cluster):
    from shared.db.pool import PG_POOL

    return cluster.runners[0].app[PG_POOL]


async def _dead_letters(cluster: Cluster, event_type: str) -> list[dict]:
    _, body = await cluster.call("GET", "balance", "/api/v1/admin/dead-letters", params={"limit": "100"})
    return [item for item in body["items"] if item["event_type"] == event_type]


async def test_a_deduct_command_that_cannot_be_processed_fails_its_order_and_leaves_no_effect(cluster: Cluster) -> None:
    """balance_service cannot apply this DeductBalance (every try fails): it is set aside, answered
    PROCESSING_FAILED, and the order is compensated: FAILED, coupon released, nothing charged."""
    await _balance_pool(cluster).execute(_REJECT)
    user = await cluster.user(10_000)
    product = await cluster.product(4321 + 500, 5)
    uc = await cluster.issue(await cluster.coupon(500), user)
    status, body = await cluster.order(
        {"user_id": user, "user_coupon_id": uc, "items": [{"product_id": product, "quantity": 1}]}
    )
    assert status == 409 and body["code"] == "PROCESSING_FAILED", body
    _, order = await cluster.call("GET", "order", f"/api/v1/orders/{body['order_id']}")
    assert order["status"] == "FAILED" and order["failure_code"] == "PROCESSING_FAILED"
    assert await cluster.balance(user) == 10_000 and await cluster.stock(product) == 5
    assert await eventually(lambda: _coupon_is(cluster, user, uc, "AVAILABLE"))
    assert [h["type"] for h in await cluster.history(user)] == ["CHARGE"]
    letters = [d for d in await _dead_letters(cluster, "DeductBalance") if d["payload"]["order_id"] == body["order_id"]]
    assert len(letters) == 1 and "rejected USE of 4321" in letters[0]["error"]
    # A replay changes nothing: the command was answered (and recorded) when it was set aside.
    status, _ = await cluster.call(
        "POST", "balance", f"/api/v1/admin/dead-letters/{letters[0]['dead_letter_id']}/replay"
    )
    assert status == 202
    await eventually(lambda: _replayed(cluster, letters[0]["dead_letter_id"]))
    assert await cluster.balance(user) == 10_000
    assert [h["type"] for h in await cluster.history(user)] == ["CHARGE"]


async def _replayed(cluster: Cluster, dead_letter_id: str) -> bool:
    _, body = await cluster.call("GET", "balance", "/api/v1/admin/dead-letters", params={"limit": "100"})
    return any(i["dead_letter_id"] == dead_letter_id and i["replayed_at"] for i in body["items"])


async def test_a_compensation_that_cannot_be_processed_keeps_the_saga_compensating_until_replayed(
    cluster: Cluster,
) -> None:
    """The stock step fails, so the balance must be refunded; the RefundBalance cannot be applied:
    set aside, NOT answered (nothing was refunded), the order stays PENDING (saga COMPENSATING) and
    a metric counts it. Once the cause is fixed, a replay refunds and the order ends FAILED."""
    await _balance_pool(cluster).execute(_REJECT)
    user = await cluster.user(10_000)
    product = await cluster.product(4322, 1)
    status, body = await cluster.call(
        "POST", "order", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 2}]}
    )
    assert status == 202, body
    order_id = body["order_id"]

    async def refund_letter() -> dict | None:
        letters = [d for d in await _dead_letters(cluster, "RefundBalance") if d["payload"]["order_id"] == order_id]
        return letters[0] if letters else None

    letter = await eventually(refund_letter, timeout=60)
    assert "rejected REFUND of 8644" in letter["error"]
    _, order = await cluster.call("GET", "order", f"/api/v1/orders/{order_id}")
    assert order["status"] == "PENDING"  # not reported FAILED: the refund did not happen
    assert await cluster.balance(user) == 10_000 - 8644
    async with cluster.http.get(cluster.urls["balance"] + "/metrics") as resp:  # type: ignore[union-attr]
        metrics = await resp.text()
    assert any(
        line.startswith("sagas_compensation_dead_lettered_total{")
        and 'event_type="RefundBalance"' in line
        and not line.endswith(" 0.0")
        for line in metrics.splitlines()
    )
    assert any(line.startswith("dead_letters_total{") for line in metrics.splitlines())

    await _balance_pool(cluster).execute("DROP TRIGGER reject_amounts ON balance_history")
    status, _ = await cluster.call("POST", "balance", f"/api/v1/admin/dead-letters/{letter['dead_letter_id']}/replay")
    assert status == 202
    final = await eventually(lambda: cluster._finished(order_id), timeout=60)
    assert final["status"] == "FAILED" and final["failure_code"] == "OUT_OF_STOCK"
    assert await cluster.balance(user) == 10_000
    assert sorted(h["type"] for h in await cluster.history(user)) == ["CHARGE", "REFUND", "USE"]
    assert await cluster.stock(product) == 1
