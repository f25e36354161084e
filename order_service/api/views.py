"""Thin views of the public order routes: parse, call the service layer, render."""

from __future__ import annotations

from aiohttp import web

from order_service.api.schemas import ORDERS, OrderOut, OrderPage, PageQuery, PlaceOrderRequest
from order_service.bootstrap import DEPS
from order_service.domain.commands import GetOrder, PlaceOrder, UserOrders
from order_service.domain.order import Order, OrderStatus
from order_service.domain.saga import TIMEOUT_CODE
from order_service.service import orders
from shared.web.cursors import parse_cursor
from shared.web.openapi import IDEMPOTENCY_KEY_SCHEMA, OrderFailedProblem, operation
from shared.web.problems import Problem, ValidationProblem
from shared.web.validation import parse_query, path_id, read_json

TAGS = ["orders"]
FAILED_DOC = (
    "payment failed (the order is FAILED, nothing stays charged): code INSUFFICIENT_BALANCE, OUT_OF_STOCK, "
    f"COUPON_UNAVAILABLE, PRODUCT_NOT_SELLABLE, {TIMEOUT_CODE} (a participant never answered) or PROCESSING_FAILED "
    "(a step's command was set aside as a dead letter), with members "
    "order_id and order_status; or PRODUCT_NOT_SELLABLE (discontinued product, no order created); "
    "or IDEMPOTENCY_KEY_REUSED"
)


def _render(order: Order) -> web.Response:
    location = {"Location": f"/api/v1/orders/{order.order_id}"}
    body = OrderOut.of(order).model_dump_json()
    if order.status is OrderStatus.COMPLETED:
        return web.Response(status=201, body=body, content_type="application/json", headers=location)
    if order.status is OrderStatus.FAILED:
        code = order.failure_code or "ORDER_FAILED"
        raise Problem(
            409, code, "Order failed", f"the order failed: {code}", order_id=order.order_id, order_status="FAILED"
        )
    return web.Response(status=202, body=body, content_type="application/json", headers=location)


def _command(request: web.Request, body: PlaceOrderRequest) -> PlaceOrder:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationProblem([{"field": "Idempotency-Key", "message": "must be 1..255 characters"}])
    return PlaceOrder(
        user_id=body.user_id,
        items={item.product_id: item.quantity for item in body.items},
        user_coupon_id=body.user_coupon_id,
        idempotency_key=key,
        respond_async="respond-async" in request.headers.get("Prefer", "").lower(),
    )


@operation(
    summary="Place an order and pay it (waits for the outcome up to the server limit)",
    tags=TAGS,
    body=PlaceOrderRequest,
    responses={
        201: OrderOut,
        202: OrderOut,
        400: "VALIDATION_ERROR",
        404: "USER_NOT_FOUND or PRODUCT_NOT_FOUND",
        409: FAILED_DOC,
        503: "SERVICE_UNAVAILABLE (with Retry-After): catalog or user registry unreachable; nothing was done",
    },
    location=True,
    problems={409: OrderFailedProblem},
    headers=[
        (
            "Idempotency-Key",
            (
                "same key and body return the same order (1..255 chars); keys are scoped to "
                "the user: another user's identical key does not collide"
            ),
            IDEMPOTENCY_KEY_SCHEMA,
        ),
        ("Prefer", "respond-async: answer 202 at once without waiting for the payment"),
    ],
    description="201 COMPLETED, 409 FAILED (problem with order_id and order_status), 202 PENDING when the "
    "outcome is not known in time or with Prefer: respond-async; Location names the order. "
    "When an order shows COMPLETED every effect is already visible: the balance deducted, the "
    "stock taken, the coupon USED. While it is in flight its coupon cannot be used by another "
    "order; when it fails the coupon is AVAILABLE again. discount_amount and paid_amount are 0 "
    "while PENDING and on a FAILED order. Idempotency keys are scoped to the user.",
)
async def place_order(request: web.Request) -> web.Response:
    body = await read_json(request, PlaceOrderRequest)
    return _render(await orders.place_order(request.app[DEPS], _command(request, body)))


@operation(
    summary="Get an order",
    tags=TAGS,
    responses={
        200: OrderOut,
        400: "VALIDATION_ERROR: NUL in the id",
        404: "ORDER_NOT_FOUND (also for an id that is not a UUID)",
    },
)
async def get_order(request: web.Request) -> web.Response:
    order = await orders.get_order(request.app[DEPS], GetOrder(request.match_info["order_id"]))
    return web.Response(body=OrderOut.of(order).model_dump_json(), content_type="application/json")


@operation(
    summary="A user's orders, newest first",
    tags=TAGS,
    query=PageQuery,
    responses={200: OrderPage, 400: "VALIDATION_ERROR: invalid id, limit or cursor", 404: "USER_NOT_FOUND"},
)
async def user_orders(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    query = parse_query(request, PageQuery)
    after = parse_cursor(ORDERS, query.cursor) if query.cursor else None
    found = await orders.user_orders(request.app[DEPS], UserOrders(user_id, query.limit + 1, after))
    page = found[: query.limit]
    last = page[-1] if len(found) > query.limit else None
    next_cursor = ORDERS.encode(last.created_at, last.order_id) if last else None
    body = OrderPage(items=[OrderOut.of(o) for o in page], next_cursor=next_cursor)
    return web.Response(body=body.model_dump_json(), content_type="application/json")
