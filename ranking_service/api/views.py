"""Thin views: parse the request, build the command, call the handler of the same name, render."""

from __future__ import annotations

from aiohttp import web

from ranking_service.api.schemas import (
    RankedProductOut,
    RebuildOut,
    RebuildQuery,
    TopProductsOut,
    TopProductsQuery,
)
from ranking_service.bootstrap import DEPS
from ranking_service.domain.commands import GetTopProducts, PostRebuild
from ranking_service.service import rollup, top_products
from shared.messaging.envelope import rfc3339
from shared.web.openapi import operation
from shared.web.validation import parse_query

# parsed query strings of top-products (a few distinct ones in practice; bounded)
_QUERIES: dict[str, TopProductsQuery] = {}


def _render(answer: top_products.TopProducts) -> TopProductsOut:
    items = [
        RankedProductOut(
            rank=r.rank,
            product_id=r.sales.product_id,
            name=r.sales.name,
            quantity_sold=r.sales.quantity_sold,
            order_count=r.sales.order_count,
        )
        for r in answer.items
    ]
    return TopProductsOut(
        from_=answer.window.first, to=answer.window.last, generated_at=rfc3339(answer.generated_at), items=items
    )


def _json(model: TopProductsOut | RebuildOut) -> web.Response:
    return web.Response(text=model.model_dump_json(by_alias=True), content_type="application/json")


@operation(
    summary="Top products by quantity sold over the last days",
    tags=["rankings"],
    query=TopProductsQuery,
    responses={200: TopProductsOut, 400: "VALIDATION_ERROR: days or limit out of range"},
)
async def get_top_products(request: web.Request) -> web.Response:
    query = _QUERIES.get(request.query_string)
    if query is None:
        query = parse_query(request, TopProductsQuery)  # a 400 is never memoised
        if len(_QUERIES) >= 256:
            _QUERIES.clear()
        _QUERIES[request.query_string] = query
    deps = request.app[DEPS]
    answer = await top_products.get_top_products(
        deps.uow, deps.cache, deps.clock, deps.tz, GetTopProducts(query.days, query.limit)
    )
    body = answer.rendered.get("json")
    if body is None:  # first request for this (cached) answer: render once, then serve the bytes
        body = answer.rendered["json"] = _render(answer).model_dump_json(by_alias=True).encode()
    return web.Response(body=body, content_type="application/json", charset="utf-8")


@operation(
    summary="Run the ranking batch now (admin)",
    tags=["admin"],
    query=RebuildQuery,
    responses={200: RebuildOut, 400: "VALIDATION_ERROR: day is not a closed day within the catch-up window"},
    description="day: a closed day (before today in the service's time zone) within the last "
    "RANKING_BATCH_CATCH_UP_DAYS days (default 30); any other date is 400 VALIDATION_ERROR. The window "
    "moves with the clock, so the schema can only say it is a date.",
)
async def post_rebuild(request: web.Request) -> web.Response:
    query = parse_query(request, RebuildQuery)
    deps = request.app[DEPS]
    done = await rollup.post_rebuild(
        deps.uow, deps.cache, deps.clock, deps.rules, deps.instance_id, PostRebuild(query.day)
    )
    return _json(RebuildOut(day=done.day, products=done.products, caught_up=done.caught_up))
