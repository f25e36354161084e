"""Request and response models of the ranking routes (they also make the OpenAPI schemas)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class TopProductsQuery(BaseModel):
    """Query of ``GET /api/v1/rankings/top-products``."""

    days: int = Field(default=3, ge=1, le=30, description="calendar days, today included")
    limit: int = Field(default=5, ge=1, le=100, description="how many products")


class RankedProductOut(BaseModel):
    rank: int
    product_id: int
    name: str
    quantity_sold: int
    order_count: int


class TopProductsOut(BaseModel):
    """Products ranked by quantity sold (ties by product_id) over ``from``..``to``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(alias="from", serialization_alias="from")
    to: dt.date
    generated_at: str = Field(description="RFC 3339 UTC")
    items: list[RankedProductOut]


class RebuildQuery(BaseModel):
    """Query of ``POST /api/v1/admin/rankings/rebuild``."""

    day: dt.date | None = Field(
        default=None,
        description="closed day to recompute (default: yesterday), within the catch-up window (default 30 days)",
    )


class RebuildOut(BaseModel):
    """What the on-demand batch did."""

    day: dt.date
    products: int = Field(description="products in the day's snapshot")
    caught_up: list[dt.date] = Field(description="missed days rolled up on the way")
