"""The public route table: which service answers each route of the contract (pure data)."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/api/v1"
EVERY_SERVICE = "*"
"""The ``service`` of a route every service answers for its own data (the gateway merges them)."""


@dataclass(frozen=True)
class Route:
    """One public operation: method, path template (as in API.md) and the service behind it."""

    method: str
    path: str
    service: str
    long_running: bool = False

    @property
    def admin(self) -> bool:
        return self.path.startswith(f"{PREFIX}/admin/")


ROUTES: tuple[Route, ...] = (
    Route("POST", f"{PREFIX}/users", "balance"),
    Route("GET", f"{PREFIX}/users/{{user_id}}", "balance"),
    Route("GET", f"{PREFIX}/users/{{user_id}}/balance", "balance"),
    Route("POST", f"{PREFIX}/users/{{user_id}}/balance/charge", "balance"),
    Route("GET", f"{PREFIX}/users/{{user_id}}/balance/history", "balance"),
    Route("GET", f"{PREFIX}/products", "catalog"),
    Route("GET", f"{PREFIX}/products/{{product_id}}", "catalog"),
    Route("POST", f"{PREFIX}/admin/products", "catalog"),
    Route("PATCH", f"{PREFIX}/admin/products/{{product_id}}", "catalog"),
    Route("POST", f"{PREFIX}/admin/coupons", "coupon"),
    Route("GET", f"{PREFIX}/coupons/{{coupon_id}}", "coupon"),
    Route("POST", f"{PREFIX}/coupons/{{coupon_id}}/issue", "coupon"),
    Route("GET", f"{PREFIX}/users/{{user_id}}/coupons", "coupon"),
    Route("POST", f"{PREFIX}/orders", "order", long_running=True),
    Route("GET", f"{PREFIX}/orders/{{order_id}}", "order"),
    Route("GET", f"{PREFIX}/users/{{user_id}}/orders", "order"),
    Route("GET", f"{PREFIX}/rankings/top-products", "ranking"),
    Route("POST", f"{PREFIX}/admin/rankings/rebuild", "ranking"),
    Route("GET", f"{PREFIX}/admin/dead-letters", EVERY_SERVICE),
    Route("POST", f"{PREFIX}/admin/dead-letters/{{dead_letter_id}}/replay", EVERY_SERVICE),
)


def public_operations() -> set[tuple[str, str]]:
    """``{(path, method)}`` with lower-case methods, as OpenAPI documents spell them."""
    return {(route.path, route.method.lower()) for route in ROUTES}
