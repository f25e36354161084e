"""schemathesis hooks for the rules across fields that OpenAPI cannot express (each documented in
the operation's description and in docs/api.md), so that a schema-valid request is also valid
for the server. Load with ``SCHEMATHESIS_HOOKS=tests.e2e.st_hooks``.

Each hook only repairs a request whose fields are individually well formed; a request that breaks
the schema (a negative case) keeps its fault and must still be refused.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import schemathesis

RANKING_TZ = ZoneInfo("Asia/Seoul")
CATCH_UP_DAYS = 30  # ranking_service's batch_catch_up_days default


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _coupon_window(body: Any) -> None:
    """``issue_starts_at`` must be earlier than ``issue_ends_at``: swap them (or drop the end)."""
    if not isinstance(body, dict):
        return
    start, end = _moment(body.get("issue_starts_at")), _moment(body.get("issue_ends_at"))
    if start is None or end is None or start < end:
        return
    if start == end:
        del body["issue_ends_at"]
    else:
        body["issue_starts_at"], body["issue_ends_at"] = body["issue_ends_at"], body["issue_starts_at"]


def _distinct_products(body: Any) -> None:
    """Each product at most once in an order: keep the first line of each product."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return
    seen: set[Any] = set()
    kept = []
    for item in body["items"]:
        key = item.get("product_id") if isinstance(item, dict) else None
        if isinstance(key, int) and not isinstance(key, bool):
            if key in seen:
                continue
            seen.add(key)
        kept.append(item)
    if kept:
        body["items"] = kept


def _rebuild_day(query: Any) -> None:
    """A rebuild ``day`` must be a closed day in the catch-up window: move a valid date into it."""
    if not isinstance(query, dict) or not isinstance(query.get("day"), str):
        return
    try:
        date.fromisoformat(query["day"])
    except ValueError:
        return
    today = datetime.now(RANKING_TZ).date()
    back = 2 + int(hashlib.sha256(query["day"].encode()).hexdigest(), 16) % (CATCH_UP_DAYS - 3)
    query["day"] = (today - timedelta(days=back)).isoformat()


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    path, method = case.operation.path, case.operation.method.upper()
    if (method, path) == ("POST", "/api/v1/admin/coupons"):
        _coupon_window(case.body)
    elif (method, path) == ("POST", "/api/v1/orders"):
        _distinct_products(case.body)
    elif (method, path) == ("POST", "/api/v1/admin/rankings/rebuild"):
        _rebuild_day(case.query)
