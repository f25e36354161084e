"""Bad input through the gateway: a 4xx problem document, never a 5xx, and nothing changed."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.e2e.conftest import Api
from tests.support.bad_input import body_mutations, names_field, query_mutations

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HUGE = 10**30


@pytest.mark.asyncio
async def test_bad_input_is_4xx_and_changes_nothing(api: Api) -> None:
    user = await api.user(balance=10_000)
    product = await api.product(price=1_000, stock=5)
    coupon = await api.coupon()
    charge = f"/api/v1/users/{user}/balance/charge"
    cases: list[tuple[str, str, object, bytes | None]] = [
        ("POST", "/api/v1/users", None, b"{not json"),
        ("POST", "/api/v1/users", None, b""),
        ("POST", "/api/v1/users", {"name": 5}, None),
        ("POST", "/api/v1/users", {"name": ""}, None),
        ("POST", "/api/v1/users", {"name": "x" * 101}, None),
        ("POST", "/api/v1/users", [1, 2], None),
        ("POST", charge, {"amount": "100"}, None),
        ("POST", charge, {"amount": 1.5}, None),
        ("POST", charge, {"amount": -5}, None),
        ("POST", charge, {"amount": 0}, None),
        ("POST", charge, {"amount": HUGE}, None),
        ("POST", charge, {"amount": True}, None),
        ("POST", charge, {}, None),
        ("POST", charge, None, b'{"amount": 100'),
        ("POST", "/api/v1/users/abc/balance/charge", {"amount": 1}, None),
        ("POST", "/api/v1/users/-1/balance/charge", {"amount": 1}, None),
        ("POST", f"/api/v1/users/{HUGE}/balance/charge", {"amount": 1}, None),
        ("POST", "/api/v1/users/999999999/balance/charge", {"amount": 1}, None),
        ("GET", f"/api/v1/users/{user}/balance/history?cursor=%%%", None, None),
        ("GET", f"/api/v1/users/{user}/balance/history?limit=0", None, None),
        ("GET", "/api/v1/products?limit=1000", None, None),
        ("GET", "/api/v1/products?status=NOPE", None, None),
        ("GET", "/api/v1/rankings/top-products?days=31", None, None),
        ("GET", "/api/v1/rankings/top-products?days=x", None, None),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": "x"}, None),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": HUGE}, None),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": -1}, None),
        ("POST", "/api/v1/admin/products", {"name": "x", "price": -1, "stock": 1}, None),
        ("POST", "/api/v1/admin/products", {"name": "x", "price": HUGE, "stock": 1}, None),
        ("PATCH", f"/api/v1/admin/products/{product}", {"stock": -3}, None),
        ("PATCH", f"/api/v1/admin/products/{product}", {"price": "free"}, None),
        (
            "POST",
            "/api/v1/admin/coupons",
            {"name": "c", "discount_type": "RATE", "discount_value": 101, "total_quantity": 1, "valid_days": 1},
            None,
        ),
        (
            "POST",
            "/api/v1/admin/coupons",
            {"name": "c", "discount_type": "FIXED", "discount_value": 0, "total_quantity": 1, "valid_days": 1},
            None,
        ),
        ("POST", "/api/v1/orders", {"user_id": user, "items": []}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 0}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": 1001}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": HUGE}]}, None),
        (
            "POST",
            "/api/v1/orders",
            {
                "user_id": user,
                "items": [{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 1}],
            },
            None,
        ),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": product, "quantity": "1"}]}, None),
        ("POST", "/api/v1/orders", {"user_id": user, "items": [{"product_id": 999999999, "quantity": 1}]}, None),
        ("POST", "/api/v1/orders", {"user_id": 999999999, "items": [{"product_id": product, "quantity": 1}]}, None),
        (
            "POST",
            "/api/v1/orders",
            {"user_id": user, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": "seven"},
            None,
        ),
        ("POST", "/api/v1/orders", None, b'{"user_id": 1, "items": [}'),
        ("POST", "/api/v1/orders", None, b"x" * (1024 * 1024 + 10)),
    ]
    failures = []
    for method, path, body, raw in cases:
        status, data, headers = await api.call(method, path, body, raw=raw, headers=api.admin)
        ok = (
            400 <= status < 500
            and isinstance(data, dict)
            and data.get("code")
            and headers.get("Content-Type", "").startswith("application/problem+json")
        )
        if not ok:
            failures.append((method, path, body if raw is None else raw[:40], status, data))
    assert not failures, "\n".join(map(repr, failures))
    assert await api.balance(user) == 10_000
    assert await api.stock(product) == 5
    assert (await api.ok("GET", f"/api/v1/users/{user}/orders"))["items"] == []
    assert (await api.ok("GET", f"/api/v1/coupons/{coupon}"))["issued_quantity"] == 0
    history = (await api.ok("GET", f"/api/v1/users/{user}/balance/history"))["items"]
    assert [h["type"] for h in history] == ["CHARGE"]


def _raw_request(base: str, method: str, path: str, header: bytes, body: bytes) -> bytes:
    """A request with a header aiohttp's client refuses to send (a NUL in its value)."""
    host, _, port = base.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n".encode()
            + header
            + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.asyncio
async def test_huge_integers_and_nul_everywhere_are_400_through_the_gateway(api: Api) -> None:
    user = await api.user(balance=10_000)
    product = await api.product(price=1_000, stock=5)
    coupon = await api.coupon()
    bodies = [
        ("POST", "/api/v1/users", {"name": "Kim"}),
        ("POST", f"/api/v1/users/{user}/balance/charge", {"amount": 100}),
        ("POST", "/api/v1/admin/products", {"name": "tea", "price": 1, "stock": 1}),
        ("PATCH", f"/api/v1/admin/products/{product}", {"name": "tea", "price": 1, "stock": 1, "status": "SELLABLE"}),
        (
            "POST",
            "/api/v1/admin/coupons",
            {
                "name": "c",
                "discount_type": "FIXED",
                "discount_value": 10,
                "total_quantity": 1,
                "valid_days": 1,
                "min_order_amount": 0,
                "issue_starts_at": "2026-01-01T00:00:00Z",
                "issue_ends_at": "2099-01-01T00:00:00Z",
            },
        ),
        ("POST", f"/api/v1/coupons/{coupon}/issue", {"user_id": user}),
        (
            "POST",
            "/api/v1/orders",
            {"user_id": user, "items": [{"product_id": product, "quantity": 1}], "user_coupon_id": 1},
        ),
    ]
    queries = [
        ("GET", f"/api/v1/users/{user}/balance/history", {"limit": "5", "cursor": "h1"}),
        ("GET", "/api/v1/products", {"status": "ALL", "limit": "5", "cursor": "p1"}),
        ("GET", f"/api/v1/users/{user}/coupons", {"status": "ALL", "limit": "5", "cursor": "c1.1"}),
        ("GET", f"/api/v1/users/{user}/orders", {"limit": "5", "cursor": "o1." + "0" * 32}),
        ("GET", "/api/v1/rankings/top-products", {"days": "3", "limit": "5"}),
        ("POST", "/api/v1/admin/rankings/rebuild", {"day": "2026-01-01"}),
        ("GET", "/api/v1/admin/dead-letters", {"service": "balance", "limit": "5", "cursor": "d1.balance.1"}),
        ("GET", "/api/v1/admin/dead-letters", {"limit": "5", "cursor": "d1.balance.1"}),
        (
            "GET",
            "/api/v1/admin/sagas",
            {"step": "COMPENSATING", "older_than_s": "10", "limit": "5", "cursor": "o1." + "0" * 32},
        ),
    ]
    paths = [f"/api/v1/users/{bad}" for bad in (f"{user}%00", 2**63)]
    paths += [
        f"/api/v1/users/{bad}/{tail}" for bad in (f"{user}%00", 2**63) for tail in ("balance", "coupons", "orders")
    ]
    paths += [f"/api/v1/products/{bad}" for bad in (f"{product}%00", 2**63)]
    paths += [f"/api/v1/coupons/{bad}" for bad in (f"{coupon}%00", 2**63)]
    paths += [f"/api/v1/orders/{uuid.uuid4()}%00", f"/api/v1/admin/orders/{uuid.uuid4()}%00/saga"]
    posts = [f"/api/v1/admin/dead-letters/{bad}/replay" for bad in ("balance-1%00", "balance%00-1")]
    failures = []
    for method, path, body in bodies:
        for field, bad in body_mutations(body):
            status, problem, _ = await api.call(method, path, bad, headers=api.admin)
            if status != 400 or not names_field(problem, field):
                failures.append((method, path, bad, status, problem))
    for method, path, params in queries:
        for name, query in query_mutations(params):
            status, problem, _ = await api.call(method, f"{path}?{query}", headers=api.admin)
            if status != 400 or not names_field(problem, name):
                failures.append((method, path, query, status, problem))
    for path in paths:
        status, problem, _ = await api.call("GET", path, headers=api.admin)
        if status != 400 or problem.get("code") != "VALIDATION_ERROR":
            failures.append(("GET", path, status, problem))
    for path in posts:
        status, problem, _ = await api.call("POST", path, headers=api.admin)
        if status != 400 or problem.get("code") != "VALIDATION_ERROR":
            failures.append(("POST", path, status, problem))
    for header in (b"Idempotency-Key: a\x00b", b"X-Request-ID: a\x00b"):
        answer = _raw_request(api.base, "POST", f"/api/v1/users/{user}/balance/charge", header, b'{"amount": 1}')
        status_line, _, rest = answer.partition(b"\r\n")
        if b" 400 " not in status_line or header.split(b":")[0] not in rest:
            failures.append((header, answer[:200]))
    assert not failures, "\n".join(map(repr, failures))
    assert await api.balance(user) == 10_000
    assert await api.stock(product) == 5
    assert (await api.ok("GET", f"/api/v1/users/{user}/orders"))["items"] == []
    assert (await api.ok("GET", f"/api/v1/coupons/{coupon}"))["issued_quantity"] == 0
    assert (await api.ok("GET", f"/api/v1/products/{product}"))["name"].startswith("e2e-product-")
