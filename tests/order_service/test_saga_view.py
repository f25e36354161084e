"""The admin saga view (API.md "Operations") against real PostgreSQL and Kafka, scripted participants."""

from __future__ import annotations

from datetime import datetime

import pytest

from order_service.domain.saga import TIMEOUT_CODE
from tests.order_service.support import DUP, HOLD, SILENT, eventually, fail
from tests.order_service.test_saga_scripted import Env, env, order_body, place  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def saga_of(env: Env, order_id: str) -> dict:
    resp = await env.client.get(f"/api/v1/admin/orders/{order_id}/saga")
    assert resp.status == 200, await resp.text()
    return await resp.json()


def names(view: dict) -> list[tuple[str, str]]:
    return [(h["kind"], h["name"]) for h in view["history"]]


async def finished_saga(env: Env, order_id: str, step: str) -> dict:
    async def probe() -> dict | None:
        view = await saga_of(env, order_id)
        return view if view["step"] == step else None

    return await eventually(probe)


async def test_completed_order_shows_every_command_and_reply_oldest_first(env: Env) -> None:
    user = env.user()
    status, body, _ = await place(env.client, order_body(user))
    assert status == 201, body
    view = await finished_saga(env, body["order_id"], "DONE")
    assert view["order_id"] == body["order_id"] and view["status"] == "COMPLETED"
    assert view["deadline"] is None and view["started_at"] == body["created_at"]
    assert names(view) == [
        ("command", "ReserveCoupon"),
        ("reply", "CouponReserved"),
        ("command", "DeductBalance"),
        ("reply", "BalanceDeducted"),
        ("command", "DeductStock"),
        ("reply", "StockDeducted"),
        ("command", "ConfirmCoupon"),
        ("outcome", "COMPLETED"),
        ("reply", "CouponConfirmed"),
    ]
    history = view["history"]
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)
    assert history[0]["at"] == body["created_at"]
    deduct = history[2]["detail"]
    assert deduct["amount"] == 4000 and deduct["step"] == "DEDUCTING_BALANCE" and deduct["attempt"] == 1
    assert history[3]["detail"]["command_id"] == deduct["event_id"]
    datetime.fromisoformat(history[-1]["at"])


async def test_failed_order_shows_the_failure_reply_compensations_and_outcome(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductStock=fail("OUT_OF_STOCK"))
    status, body, _ = await place(env.client, order_body(user))
    assert status == 409 and body["code"] == "OUT_OF_STOCK", body
    view = await saga_of(env, body["order_id"])
    assert view["status"] == "FAILED" and view["step"] == "FAILED"
    got = names(view)
    assert got[:6] == [
        ("command", "ReserveCoupon"),
        ("reply", "CouponReserved"),
        ("command", "DeductBalance"),
        ("reply", "BalanceDeducted"),
        ("command", "DeductStock"),
        ("reply", "StockDeductionFailed"),
    ]
    assert view["history"][5]["detail"]["code"] == "OUT_OF_STOCK"
    assert got[6:8] == [("compensation", "RefundBalance"), ("compensation", "ReleaseCoupon")]
    assert sorted(got[8:10]) == [("reply", "BalanceRefunded"), ("reply", "CouponReleased")]
    assert got[10:] == [("outcome", "FAILED")] and view["history"][10]["detail"] == {"failure_code": "OUT_OF_STOCK"}


async def test_timeouts_and_resends_are_in_the_history(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductBalance=SILENT)
    status, body, _ = await place(env.client, order_body(user, coupon=None))
    assert status == 409 and body["code"] == TIMEOUT_CODE, body
    got = names(await saga_of(env, body["order_id"]))
    assert got == [
        ("command", "DeductBalance"),
        ("timeout", "DEDUCTING_BALANCE"),
        ("command", "DeductBalance"),
        ("timeout", "DEDUCTING_BALANCE"),
        ("command", "DeductBalance"),
        ("timeout", "DEDUCTING_BALANCE"),
        ("compensation", "RefundBalance"),
        ("reply", "BalanceRefunded"),
        ("outcome", "FAILED"),
    ]


async def test_a_re_sent_reply_is_kept_as_ignored(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductBalance=DUP)
    status, body, _ = await place(env.client, order_body(user, coupon=None))
    assert status == 201, body
    oid = body["order_id"]

    async def ignored() -> list:
        view = await saga_of(env, oid)
        return [h for h in view["history"] if h["detail"].get("ignored")]

    found = await eventually(ignored)
    assert [h["name"] for h in found] == ["BalanceDeducted"]


async def test_unknown_or_malformed_order_is_404(env: Env) -> None:
    for oid in ("00000000-0000-0000-0000-00000000dead", "not-a-uuid"):
        resp = await env.client.get(f"/api/v1/admin/orders/{oid}/saga")
        assert resp.status == 404 and (await resp.json())["code"] == "ORDER_NOT_FOUND"


async def test_unfinished_sagas_oldest_first_filtered_and_paged(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductStock=HOLD)
    oids = []
    for _ in range(3):
        status, body, _ = await place(env.client, order_body(user, coupon=None), Prefer="respond-async")
        assert status == 202
        oids.append(body["order_id"])

    async def listed(query: str) -> dict:
        resp = await env.client.get(f"/api/v1/admin/sagas?{query}")
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def all_holding() -> bool:
        page = await listed("step=DEDUCTING_STOCK&limit=100")
        return {i["order_id"] for i in page["items"]} >= set(oids)

    await eventually(all_holding)
    page = await listed("step=DEDUCTING_STOCK&limit=100")
    mine = [i for i in page["items"] if i["order_id"] in oids]
    assert [i["order_id"] for i in mine] == oids  # oldest first
    assert all(i["status"] == "PENDING" and i["deadline"] and "history" not in i for i in mine)
    started = [i["started_at"] for i in page["items"]]
    assert started == sorted(started)
    # paging: one at a time walks the same list
    walked, cursor = [], None
    while True:
        query = "step=DEDUCTING_STOCK&limit=1" + (f"&cursor={cursor}" if cursor else "")
        got = await listed(query)
        walked += [i["order_id"] for i in got["items"]]
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert [o for o in walked if o in oids] == oids
    assert not [i for i in (await listed("step=DEDUCTING_STOCK&older_than_s=3600"))["items"] if i["order_id"] in oids]
    assert not [i for i in (await listed("step=RESERVING_COUPON"))["items"] if i["order_id"] in oids]
    for bad in ("step=DONE", "step=nope", "limit=0", "limit=101", "older_than_s=-1", "cursor=%%%"):
        resp = await env.client.get(f"/api/v1/admin/sagas?{bad}")
        assert resp.status == 400, bad
        assert (await resp.json())["code"] == "VALIDATION_ERROR"
    await env.parts.answer_held()


async def test_the_saga_routes_are_in_the_openapi_document(env: Env) -> None:
    doc = await (await env.client.get("/api/docs/openapi.json")).json()
    one = doc["paths"]["/api/v1/admin/orders/{order_id}/saga"]["get"]
    many = doc["paths"]["/api/v1/admin/sagas"]["get"]
    assert one["operationId"] == "getOrderSaga" and many["operationId"] == "listUnfinishedSagas"
    assert {"200", "404"} <= set(one["responses"]) and {"200", "400"} <= set(many["responses"])
    assert {p["name"] for p in many["parameters"]} >= {"step", "older_than_s", "limit", "cursor"}
    assert "SagaOut" in doc["components"]["schemas"] and "SagaHistoryItem" in doc["components"]["schemas"]
