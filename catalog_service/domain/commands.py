"""Commands of the catalog: what the HTTP views and the saga consumer ask the service layer.

Each is named as its use case (the view / handler of the same name); the saga's are the service's
own (merged lines, no event ids), decoded from ``saga.stock.commands`` by the consumer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from catalog_service.domain.model import ProductChange


@dataclass(frozen=True)
class CreateProduct:
    """Add a product: SELLABLE, or SOLD_OUT when ``stock`` is 0."""

    name: str
    price: int
    stock: int


@dataclass(frozen=True)
class PatchProduct:
    """An administrator's change of one product."""

    product_id: int
    change: ProductChange


@dataclass(frozen=True)
class GetProduct:
    product_id: int


@dataclass(frozen=True)
class ListProducts:
    """A page in product-id order after the id ``after`` (0: from the start)."""

    only_sellable: bool
    after: int
    limit: int


@dataclass(frozen=True)
class LookupProducts:
    """The products among ``product_ids`` that exist (duplicates and unknown ids allowed)."""

    product_ids: Sequence[int]


@dataclass(frozen=True)
class DeductStock:
    """Take every line of an order from stock, or none (``wanted``: merged lines, see
    ``catalog_service.domain.stock.merge_lines``)."""

    order_id: str
    wanted: Mapping[int, int]


@dataclass(frozen=True)
class RestoreStock:
    """Put back what an order took, once; fence an order that took nothing."""

    order_id: str


StockCommand = DeductStock | RestoreStock
