"""Thin views of the admin saga view (API.md "Operations"); the gateway checks the admin token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_apispec import docs

from order_service.api.admin_schemas import SagaOut, SagaPage, SagaQuery, SagaSummary
from order_service.api.schemas import ORDERS
from order_service.bootstrap import DEPS
from order_service.domain.commands import OrderSaga, UnfinishedSagas
from order_service.service import sagas
from shared.web.cursors import parse_cursor
from shared.web.openapi import operation
from shared.web.validation import parse_query

TAGS = ["admin: sagas"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def operation_id(name: str) -> Callable[[Handler], Handler]:
    """The route's OpenAPI operationId, when it is not the view's name in camelCase."""
    decorate: Callable[[Handler], Handler] = docs(operationId=name)
    return decorate


@operation_id("getOrderSaga")
@operation(
    summary="An order's saga with its history (every command sent, reply received, timeout and "
    "compensation, oldest first)",
    description="The history is kept `ORDER_SAGA_HISTORY_RETENTION_HOURS` (720, 30 days), then purged once the "
    "saga has finished (an older finished order's `history` is empty; an unfinished saga keeps all of it).",
    tags=TAGS,
    responses={
        200: SagaOut,
        401: "Missing or wrong admin token",
        404: "ORDER_NOT_FOUND (also for an id that is not a UUID)",
    },
)
async def order_saga(request: web.Request) -> web.Response:
    row, history = await sagas.order_saga(request.app[DEPS], OrderSaga(request.match_info["order_id"]))
    return web.Response(body=SagaOut.with_history(row, history).model_dump_json(), content_type="application/json")


@operation_id("listUnfinishedSagas")
@operation(
    summary="Unfinished sagas, oldest first",
    tags=TAGS,
    query=SagaQuery,
    responses={200: SagaPage, 400: "invalid step, older_than_s, limit or cursor", 401: "Missing or wrong admin token"},
    description="Sagas not yet DONE or FAILED (an order may be COMPLETED while its saga still confirms the "
    "coupon), ordered by start time then order id; filter by step and by age.",
)
async def unfinished_sagas(request: web.Request) -> web.Response:
    query = parse_query(request, SagaQuery)
    after = parse_cursor(ORDERS, query.cursor) if query.cursor else None
    cmd = UnfinishedSagas(step=query.step, older_than_s=query.older_than_s, limit=query.limit + 1, after=after)
    rows = await sagas.unfinished_sagas(request.app[DEPS], cmd)
    page = rows[: query.limit]
    next_cursor = ORDERS.encode(page[-1]["started_at"], str(page[-1]["order_id"])) if len(rows) > query.limit else None
    body = SagaPage(items=[SagaSummary.of(row) for row in page], next_cursor=next_cursor)
    return web.Response(body=body.model_dump_json(), content_type="application/json")
