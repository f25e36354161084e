"""Request and response models of the public routes (also the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from balance_service.api.cursor import HISTORY
from balance_service.domain.model import MAX_CHARGE, MIN_CHARGE
from shared.messaging.envelope import rfc3339
from shared.web.validation import text

Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]


class CreateUserRequest(BaseModel):
    """A new user."""

    name: text(1, 100, examples=["Kim Minsu"])  # type: ignore[valid-type]


class UserResponse(BaseModel):
    """A user."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int
    name: str
    created_at: Timestamp


class ChargeRequest(BaseModel):
    """Money to add to the balance, in KRW."""

    amount: int = Field(ge=MIN_CHARGE, le=MAX_CHARGE, examples=[10000])


class ChargeResponse(BaseModel):
    """The balance after the charge."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int
    balance: int
    charged: int


class BalanceResponse(BaseModel):
    """The user's balance (0 if never charged)."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int
    balance: int
    updated_at: Timestamp


class HistoryQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, pattern=HISTORY.pattern, description="next_cursor of the previous page")


class HistoryItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: Literal["CHARGE", "USE", "REFUND"]
    amount: int
    balance_after: int
    order_id: str | None
    created_at: Timestamp


class HistoryPage(BaseModel):
    """Balance history, newest first."""

    items: list[HistoryItem]
    next_cursor: str | None
