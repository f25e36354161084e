"""Thin views: parse, call the service layer, render."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from coupon_service import service
from coupon_service.api import cursor
from coupon_service.api import schemas as s
from coupon_service.bootstrap import DEPS
from coupon_service.domain import commands
from coupon_service.domain.model import Coupon, CouponTerms, DiscountType
from shared.messaging.envelope import rfc3339
from shared.web.openapi import operation
from shared.web.validation import parse_query, path_id, read_json

TAGS = ["coupons"]


def _time(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _coupon(coupon: Coupon, issued: int, now: datetime) -> dict[str, Any]:
    t = coupon.terms
    return {
        "coupon_id": coupon.coupon_id,
        "name": t.name,
        "discount_type": t.discount_type.value,
        "discount_value": t.discount_value,
        "total_quantity": t.total_quantity,
        "issued_quantity": issued,
        "remaining_quantity": max(0, t.total_quantity - issued),
        "status": t.status(now, issued).value,
        "issue_starts_at": _time(t.issue_starts_at),
        "issue_ends_at": _time(t.issue_ends_at),
        "valid_days": t.valid_days,
        "min_order_amount": t.min_order_amount,
        "created_at": rfc3339(coupon.created_at),
    }


@operation(
    summary="Create a coupon (admin)",
    tags=TAGS,
    body=s.CreateCoupon,
    responses={
        201: s.CouponOut,
        400: "VALIDATION_ERROR: invalid coupon (a RATE value outside 1..100, "
        "issue_starts_at not before issue_ends_at...)",
        401: "Missing or wrong admin token (UNAUTHORIZED)",
    },
    headers=[("X-Admin-Token", "admin token (checked by the gateway)")],
)
async def create_coupon(request: web.Request) -> web.Response:
    body = await read_json(request, s.CreateCoupon)
    deps = request.app[DEPS]
    terms = CouponTerms(**{**body.model_dump(), "discount_type": DiscountType(body.discount_type)})
    coupon = await service.coupons.create_coupon(deps.coupons, commands.CreateCoupon(terms))
    return _json(_coupon(coupon, 0, deps.clock()), 201)


@operation(
    summary="A coupon with its issue counts",
    tags=TAGS,
    responses={200: s.CouponOut, 400: "VALIDATION_ERROR: invalid id", 404: "COUPON_NOT_FOUND"},
)
async def get_coupon(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    coupon, issued = await service.coupons.get_coupon(deps.coupons, commands.GetCoupon(path_id(request, "coupon_id")))
    return _json(_coupon(coupon, issued, deps.clock()))


@operation(
    summary="Issue a copy to a user (first come, first served)",
    tags=TAGS,
    body=s.IssueCoupon,
    responses={
        201: s.IssuedOut,
        400: "VALIDATION_ERROR",
        404: "USER_NOT_FOUND or COUPON_NOT_FOUND",
        409: "COUPON_ALREADY_ISSUED, COUPON_NOT_ISSUABLE or COUPON_SOLD_OUT",
    },
    description="When several outcomes apply, the first of this order is answered: "
    "USER_NOT_FOUND, COUPON_NOT_FOUND, COUPON_ALREADY_ISSUED (also outside the issue "
    "window or sold out), COUPON_NOT_ISSUABLE (outside the issue window, also when sold "
    "out), COUPON_SOLD_OUT.",
)
async def issue_coupon(request: web.Request) -> web.Response:
    coupon_id = path_id(request, "coupon_id")
    body = await read_json(request, s.IssueCoupon)
    deps = request.app[DEPS]
    cmd = commands.IssueCoupon(coupon_id, body.user_id, deps.clock())
    issued = await service.issuing.issue_coupon(deps.issuer, cmd)
    return _json(
        {
            "user_coupon_id": issued.user_coupon_id,
            "coupon_id": issued.coupon_id,
            "user_id": issued.user_id,
            "status": issued.status,
            "issued_at": rfc3339(issued.issued_at),
            "expires_at": rfc3339(issued.expires_at),
        },
        201,
    )


@operation(
    summary="A user's coupons (usable ones by default)",
    tags=TAGS,
    query=s.OwnedQuery,
    responses={200: s.OwnedPage, 400: "VALIDATION_ERROR: invalid id, status, limit or cursor", 404: "USER_NOT_FOUND"},
    description="A coupon is USED (with used_at) from the moment an order takes it: so it reads "
    "USED as soon as the order is COMPLETED, and no other order can use it while that "
    "order is in flight. If the order fails, the coupon is AVAILABLE again (used_at "
    "null) by the time the order reads FAILED. RESERVED is only shown by coupons "
    "reserved by orders placed before this rule.",
)
async def user_coupons(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    query = parse_query(request, s.OwnedQuery)
    after = cursor.decode(query.cursor) if query.cursor else None
    deps = request.app[DEPS]
    cmd = commands.UserCoupons(user_id, query.status == "ALL", after, query.limit, deps.clock())
    page = await service.user_coupons.user_coupons(deps.single, deps.users, cmd)
    items = [
        {
            **dataclasses.asdict(item),
            "issued_at": rfc3339(item.issued_at),
            "expires_at": rfc3339(item.expires_at),
            "used_at": _time(item.used_at),
        }
        for item in page.items
    ]
    return _json({"items": items, "next_cursor": cursor.encode(page.after) if page.after else None})
