"""Thin views: parse, call the service layer, render."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from balance_service.api import cursor
from balance_service.api.schemas import (
    BalanceResponse,
    ChargeRequest,
    ChargeResponse,
    CreateUserRequest,
    HistoryItem,
    HistoryPage,
    HistoryQuery,
    UserResponse,
)
from balance_service.bootstrap import DEPS
from balance_service.domain.commands import Charge, CreateUser
from balance_service.service import balances, users
from shared.messaging import topics
from shared.web.openapi import IDEMPOTENCY_KEY_SCHEMA, operation
from shared.web.problems import ValidationProblem
from shared.web.validation import parse_query, path_id, read_json

TAGS = ["Users and balance"]
IDEMPOTENCY_KEY = "Idempotency-Key"
NOT_FOUND = "USER_NOT_FOUND: no such user"


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json(), status=status, content_type="application/json")


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationProblem([{"field": IDEMPOTENCY_KEY, "message": "must be 1 to 255 characters"}])
    return key


@operation(
    summary="Register a user", tags=TAGS, body=CreateUserRequest, responses={201: UserResponse, 400: "VALIDATION_ERROR"}
)
async def create_user(request: web.Request) -> web.Response:
    body = await read_json(request, CreateUserRequest)
    deps = request.app[DEPS]
    user = await users.create_user(deps.uow, CreateUser(body.name), topic=deps.topics(topics.USER_REGISTERED))
    return _json(UserResponse.model_validate(user), 201)


@operation(summary="Get a user", tags=TAGS, responses={200: UserResponse, 400: "VALIDATION_ERROR", 404: NOT_FOUND})
async def get_user(request: web.Request) -> web.Response:
    user = await users.get_user(request.app[DEPS].uow, path_id(request, "user_id"))
    return _json(UserResponse.model_validate(user))


async def internal_get_user(request: web.Request) -> web.Response:
    """``GET /internal/users/{user_id}`` for the coupon and order services (not public)."""
    return await get_user(request)


@operation(
    summary="Get a user's balance", tags=TAGS, responses={200: BalanceResponse, 400: "VALIDATION_ERROR", 404: NOT_FOUND}
)
async def get_balance(request: web.Request) -> web.Response:
    balance = await balances.get_balance(request.app[DEPS].uow, path_id(request, "user_id"))
    return _json(BalanceResponse.model_validate(balance))


@operation(
    summary="Charge a user's balance",
    tags=TAGS,
    body=ChargeRequest,
    responses={
        200: ChargeResponse,
        400: "VALIDATION_ERROR (amount not an integer in 1..10,000,000)",
        404: NOT_FOUND,
        409: "BALANCE_LIMIT_EXCEEDED (the balance after the charge plus the money held by orders in "
        "flight would exceed 10,000,000; the detail names the held amount; nothing changed) or "
        "IDEMPOTENCY_KEY_REUSED (the key was used with another body)",
    },
    headers=[
        (
            IDEMPOTENCY_KEY,
            (
                "Up to 255 characters; a retry with the same key and body returns the "
                "first outcome and charges once. Keys are scoped to the user. Kept at "
                "least 24 hours."
            ),
            IDEMPOTENCY_KEY_SCHEMA,
        )
    ],
    description="A balance never exceeds 10,000,000, refunds included: money an order in flight has "
    "taken counts toward the limit until the order completes (a failed order's refund "
    "gives it back and is never refused). So a charge that a later refund would push over "
    "the limit is refused with 409 BALANCE_LIMIT_EXCEEDED, whose detail says how much is "
    "held. The hold ends when balance_service consumes the order's order.completed event, "
    "normally well under a second after the order shows COMPLETED.",
)
async def charge(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    key = _idempotency_key(request)
    body = await read_json(request, ChargeRequest)
    result = await balances.charge(request.app[DEPS].charges, Charge(user_id, body.amount, key))
    return _json(ChargeResponse.model_validate(result))


@operation(
    summary="A user's balance history, newest first",
    tags=TAGS,
    query=HistoryQuery,
    responses={200: HistoryPage, 400: "VALIDATION_ERROR", 404: NOT_FOUND},
)
async def history(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    query = parse_query(request, HistoryQuery)
    before = cursor.decode(query.cursor) if query.cursor is not None else None
    entries = await balances.history(request.app[DEPS].uow, user_id, before_id=before, limit=query.limit + 1)
    page = entries[: query.limit]
    next_cursor = cursor.encode(page[-1].id) if len(entries) > query.limit else None
    return _json(HistoryPage(items=[HistoryItem.model_validate(e) for e in page], next_cursor=next_cursor))
