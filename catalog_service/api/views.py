"""Thin views: parse the request into a command, call the handler of the same name, render."""

from __future__ import annotations

from aiohttp import web

from catalog_service.api.schemas import (
    CreateProduct,
    ListQuery,
    LookupRequest,
    LookupResponse,
    PatchProduct,
    ProductOut,
    ProductPage,
    encode_cursor,
)
from catalog_service.bootstrap import DEPS
from catalog_service.domain.commands import CreateProduct as CreateCommand
from catalog_service.domain.commands import GetProduct, ListProducts, LookupProducts
from catalog_service.domain.commands import PatchProduct as PatchCommand
from catalog_service.domain.model import ProductChange, ProductStatus
from catalog_service.service import products as service
from shared.web.openapi import operation
from shared.web.validation import parse_query, path_id, read_json

TAGS = ["products"]
ADMIN = ["admin: products"]


def _json(model: ProductOut | ProductPage | LookupResponse, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


@operation(
    summary="List products",
    tags=TAGS,
    query=ListQuery,
    responses={200: ProductPage, 400: "VALIDATION_ERROR: invalid status, limit or cursor"},
)
async def list_products(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    page = await service.list_products(
        request.app[DEPS].single_statement,
        ListProducts(only_sellable=query.status == "SELLABLE", after=query.after, limit=query.limit),
    )
    cursor = encode_cursor(page.last_id) if page.last_id is not None else None
    return _json(ProductPage(items=[ProductOut.of(p) for p in page.items], next_cursor=cursor))


@operation(
    summary="Get a product",
    tags=TAGS,
    responses={200: ProductOut, 400: "VALIDATION_ERROR: invalid id", 404: "PRODUCT_NOT_FOUND"},
)
async def get_product(request: web.Request) -> web.Response:
    product = await service.get_product(request.app[DEPS].single_statement, GetProduct(path_id(request, "product_id")))
    return _json(ProductOut.of(product))


@operation(
    summary="Create a product",
    tags=ADMIN,
    body=CreateProduct,
    responses={201: ProductOut, 400: "VALIDATION_ERROR", 401: "Missing or wrong admin token (UNAUTHORIZED)"},
)
async def create_product(request: web.Request) -> web.Response:
    body = await read_json(request, CreateProduct)
    product = await service.create_product(request.app[DEPS].uow, CreateCommand(body.name, body.price, body.stock))
    return _json(ProductOut.of(product), status=201)


@operation(
    summary="Change a product",
    tags=ADMIN,
    body=PatchProduct,
    responses={
        200: ProductOut,
        400: "VALIDATION_ERROR",
        401: "Missing or wrong admin token (UNAUTHORIZED)",
        404: "PRODUCT_NOT_FOUND",
    },
)
async def patch_product(request: web.Request) -> web.Response:
    product_id = path_id(request, "product_id")
    body = await read_json(request, PatchProduct)
    change = ProductChange(
        name=body.name,
        price=body.price,
        stock=body.stock,
        status=ProductStatus(body.status) if body.status else None,
    )
    product = await service.patch_product(request.app[DEPS].uow, PatchCommand(product_id, change))
    return _json(ProductOut.of(product))


async def lookup_products(request: web.Request) -> web.Response:
    """Internal: the products among ``product_ids`` that exist (order_service's price snapshot)."""
    body = await read_json(request, LookupRequest)
    products = await service.lookup_products(request.app[DEPS].single_statement, LookupProducts(body.product_ids))
    return _json(LookupResponse(items=[ProductOut.of(p) for p in products]))
