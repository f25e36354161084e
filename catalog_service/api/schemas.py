"""Request and response bodies (pydantic; strict JSON types, bounded numbers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog_service.domain.model import MAX_AMOUNT, MAX_NAME, Product
from shared.web.cursors import ID, Cursor
from shared.web.validation import Id, not_nullable, text

if TYPE_CHECKING:
    Name = str  # ``text`` builds an ``Annotated[str, ...]`` at run time, which mypy cannot follow
else:
    Name = text(1, MAX_NAME, strip=True)
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateProduct(_Body):
    """A new product: SELLABLE, or SOLD_OUT when ``stock`` is 0."""

    name: Name
    price: Amount
    stock: Amount


class PatchProduct(_Body):
    """Any of the fields, at least one, none null; ``status`` SELLABLE lifts a discontinuation
    (SOLD_OUT when stock is 0)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=not_nullable(min_properties=1))

    name: Name | None = None
    price: Amount | None = None
    stock: Amount | None = None
    status: Literal["SELLABLE", "DISCONTINUED"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: object) -> object:
        if isinstance(data, dict):
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(f"fields may not be null: {', '.join(map(str, nulls))}")
        return data

    @model_validator(mode="after")
    def _something(self) -> PatchProduct:
        if not self.model_fields_set:
            raise ValueError("at least one of name, price, stock, status is required")
        return self


class LookupRequest(_Body):
    product_ids: list[Id] = Field(min_length=1, max_length=100)


class ProductOut(BaseModel):
    """A product with its live stock."""

    product_id: int
    name: str
    price: int
    stock: int
    status: Literal["SELLABLE", "SOLD_OUT", "DISCONTINUED"]

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            product_id=product.product_id,
            name=product.name,
            price=product.price,
            stock=product.stock,
            status=product.status.value,
        )


class ProductPage(BaseModel):
    """A page of products in product-id order; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ProductOut]
    next_cursor: str | None


class LookupResponse(BaseModel):
    """The requested products that exist, in id order."""

    items: list[ProductOut]


PAGE = Cursor("p", ID)


def encode_cursor(last_id: int) -> str:
    return PAGE.encode(last_id)


def decode_cursor(cursor: str) -> int:
    """The last product id of the previous page; ``ValueError`` when it is not one of ours."""
    last_id: int = PAGE.decode(cursor)[0]
    return last_id


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["SELLABLE", "ALL"] = "SELLABLE"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, pattern=PAGE.pattern, description="next_cursor of the previous page")

    @property
    def after(self) -> int:
        return decode_cursor(self.cursor) if self.cursor else 0
