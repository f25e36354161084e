"""The public, admin and internal routes against the contract; errors change nothing."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.catalog_service.conftest import Catalog
from tests.support.bad_input import body_mutations, names_field, query_mutations

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PRODUCT_KEYS = {"product_id", "name", "price", "stock", "status"}


async def test_create_get_and_patch(catalog: Catalog) -> None:
    created = await catalog.create(name="  Tea  ", price=1500, stock=0)
    assert set(created) == PRODUCT_KEYS
    assert (created["name"], created["price"], created["stock"], created["status"]) == ("Tea", 1500, 0, "SOLD_OUT")
    pid = created["product_id"]
    assert await catalog.get(pid) == created
    url = f"/api/v1/admin/products/{pid}"
    steps = [
        ({"stock": 5}, 5, "SELLABLE"),
        ({"status": "DISCONTINUED"}, 5, "DISCONTINUED"),
        ({"stock": 0}, 0, "DISCONTINUED"),
        ({"status": "SELLABLE"}, 0, "SOLD_OUT"),
        ({"stock": 2, "price": 0, "name": "Green tea"}, 2, "SELLABLE"),
    ]
    for body, stock, status in steps:
        resp = await catalog.client.patch(url, json=body)
        assert resp.status == 200, await resp.text()
        got = await resp.json()
        assert (got["stock"], got["status"]) == (stock, status), body
    assert await catalog.get(pid) == {**created, "name": "Green tea", "price": 0, "stock": 2, "status": "SELLABLE"}


CREATE_BAD = [
    b"{not json",
    b"",
    b"[]",
    b'{"name": "x", "price": "5", "stock": 1}',
    b'{"name": "x", "price": 5.0, "stock": 1}',
    b'{"name": "x", "price": true, "stock": 1}',
    b'{"name": "x", "price": -1, "stock": 1}',
    b'{"name": "x", "price": 1, "stock": -1}',
    b'{"name": "x", "price": 1, "stock": 1000000000001}',
    b'{"name": "x", "price": 99999999999999999999999999999, "stock": 1}',
    b'{"name": "", "price": 1, "stock": 1}',
    b'{"name": "   ", "price": 1, "stock": 1}',
    b'{"name": 5, "price": 1, "stock": 1}',
    json.dumps({"name": "x" * 201, "price": 1, "stock": 1}).encode(),
    b'{"price": 1, "stock": 1}',
    b'{"name": "x", "price": 1, "stock": 1, "status": "SELLABLE"}',
    b'{"name": null, "price": 1, "stock": 1}',
]

PATCH_BAD = [
    b"{not json",
    b"{}",
    b'{"stock": null}',
    b'{"stock": "5"}',
    b'{"stock": 1.5}',
    b'{"stock": -1}',
    b'{"price": 10000000000000}',
    b'{"price": 1e30}',
    b'{"status": "SOLD_OUT"}',
    b'{"status": "sellable"}',
    b'{"name": ""}',
    b'{"colour": "red"}',
    b'"stock"',
]


async def _count(catalog: Catalog) -> int:
    return await catalog.pool.fetchval("SELECT count(*) FROM products")


@pytest.mark.parametrize("body", CREATE_BAD)
async def test_invalid_creates_are_400_and_create_nothing(catalog: Catalog, body: bytes) -> None:
    before = await _count(catalog)
    resp = await catalog.client.post("/api/v1/admin/products", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400, (body, await resp.text())
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert problem["code"] == "VALIDATION_ERROR" and problem["status"] == 400
    assert await _count(catalog) == before


@pytest.mark.parametrize("body", PATCH_BAD)
async def test_invalid_patches_are_400_and_change_nothing(catalog: Catalog, body: bytes) -> None:
    product = await catalog.create(stock=3)
    resp = await catalog.client.patch(
        f"/api/v1/admin/products/{product['product_id']}", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400, (body, await resp.text())
    assert (await resp.json())["code"] == "VALIDATION_ERROR"
    assert await catalog.get(product["product_id"]) == product


async def test_unknown_and_invalid_ids(catalog: Catalog) -> None:
    before = await _count(catalog)
    for path in ("/api/v1/products/999999999", "/api/v1/products/9223372036854775807"):
        resp = await catalog.client.get(path)
        assert resp.status == 404 and (await resp.json())["code"] == "PRODUCT_NOT_FOUND"
    resp = await catalog.client.patch("/api/v1/admin/products/999999999", json={"stock": 5})
    assert resp.status == 404 and (await resp.json())["code"] == "PRODUCT_NOT_FOUND"
    for bad in ("0", "-1", "abc", "9223372036854775808", "1.5"):
        resp = await catalog.client.get(f"/api/v1/products/{bad}")
        assert resp.status == 400, bad
        resp = await catalog.client.patch(f"/api/v1/admin/products/{bad}", json={"stock": 5})
        assert resp.status == 400, bad
    assert await _count(catalog) == before


@pytest.mark.parametrize(
    "params",
    [
        {"status": "SOLD_OUT"},
        {"status": "all"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "x"},
        {"cursor": "!!!"},
        {"cursor": "abc"},
        {"cursor": "cDow"},
        {"cursor": "cDpx"},
    ],
)
async def test_invalid_list_queries(catalog: Catalog, params: dict[str, str]) -> None:
    resp = await catalog.client.get("/api/v1/products", params=params)
    assert resp.status == 400, params
    assert (await resp.json())["code"] == "VALIDATION_ERROR"


async def _all_pages(catalog: Catalog, status: str, limit: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        params = {"status": status, "limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        resp = await catalog.client.get("/api/v1/products", params=params)
        assert resp.status == 200
        page = await resp.json()
        assert len(page["items"]) <= limit
        ids += [item["product_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
        await asyncio.sleep(0)  # let the stock changes interleave


async def test_paging_while_stock_changes_returns_every_product_once(catalog: Catalog) -> None:
    created = [await catalog.create(name=f"page-{i}", stock=1 if i % 3 else 1000) for i in range(40)]
    busy = [p["product_id"] for p in created if p["stock"] == 1]
    steady = {p["product_id"] for p in created if p["stock"] == 1000}
    stop = asyncio.Event()

    async def churn() -> None:
        n = 0
        while not stop.is_set():
            pid = busy[n % len(busy)]
            await catalog.deduct(f"churn-{pid}-{n}", [(pid, 1)])
            await catalog.client.patch(f"/api/v1/admin/products/{pid}", json={"stock": 1})
            n += 1

    churner = asyncio.create_task(churn())
    try:
        all_ids = await _all_pages(catalog, "ALL", 7)
        sellable = await _all_pages(catalog, "SELLABLE", 5)
    finally:
        stop.set()
        await churner
    everything = await catalog.pool.fetch("SELECT id FROM products ORDER BY id")
    assert all_ids == [row["id"] for row in everything]  # each exactly once, in id order
    assert len(sellable) == len(set(sellable)) and sellable == sorted(sellable)
    assert steady <= set(sellable)


async def test_lookup(catalog: Catalog) -> None:
    a = await catalog.create(name="a", stock=1)
    b = await catalog.create(name="b", stock=0)
    resp = await catalog.client.post(
        "/internal/products/lookup",
        json={"product_ids": [b["product_id"], 999999999, a["product_id"], a["product_id"]]},
    )
    assert resp.status == 200
    assert (await resp.json())["items"] == [a, b]
    for body in (
        {"product_ids": []},
        {"product_ids": list(range(1, 102))},
        {"product_ids": ["1"]},
        {"product_ids": [0]},
        {},
        {"product_ids": [2**63]},
    ):
        resp = await catalog.client.post("/internal/products/lookup", json=body)
        assert resp.status == 400, body


async def test_openapi_documents_public_routes_only(catalog: Catalog) -> None:
    spec = await (await catalog.client.get("/api/docs/openapi.json")).json()
    paths = spec["paths"]
    assert {
        "/api/v1/products",
        "/api/v1/products/{product_id}",
        "/api/v1/admin/products",
        "/api/v1/admin/products/{product_id}",
    } <= set(paths)
    assert not any(p.startswith("/internal") for p in paths)
    assert "ProductOut" in spec["components"]["schemas"]


async def test_huge_integers_and_nul_are_400_naming_the_field_and_change_nothing(catalog: Catalog) -> None:
    product = await catalog.create(name="steady", price=700, stock=3)
    path = f"/api/v1/admin/products/{product['product_id']}"
    cases = [
        ("POST", "/api/v1/admin/products", f, b) for f, b in body_mutations({"name": "tea", "price": 1, "stock": 1})
    ]
    cases += [
        ("PATCH", path, f, b) for f, b in body_mutations({"name": "tea", "price": 1, "stock": 1, "status": "SELLABLE"})
    ]
    for method, url, field, body in cases:
        resp = await catalog.client.request(method, url, json=body)
        problem = await resp.json()
        assert resp.status == 400 and names_field(problem, field), (method, body, problem)
    for name, query in query_mutations({"status": "ALL", "limit": "5", "cursor": "p1"}):
        resp = await catalog.client.get(f"/api/v1/products?{query}")
        assert resp.status == 400 and names_field(await resp.json(), name), query
    for bad in (f"{product['product_id']}%00", str(2**63)):
        resp = await catalog.client.get(f"/api/v1/products/{bad}")
        assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR", bad
    assert await catalog.get(product["product_id"]) == product
    async with catalog.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM products WHERE name LIKE 't%a'") == 0


async def test_the_spec_offers_no_null_and_no_blank_name(catalog: Catalog) -> None:
    spec = await (await catalog.client.get("/api/docs/openapi.json")).json()
    patch = spec["components"]["schemas"]["PatchProduct"]
    assert patch["minProperties"] == 1
    assert not any(prop.get("nullable") for prop in patch["properties"].values())
    resp = await catalog.client.post("/api/v1/admin/products", json={"name": " \u3000 ", "price": 1, "stock": 1})
    assert resp.status == 400
