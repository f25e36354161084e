"""The payment saga's internal messages (may change; not part of the public contract).

The order service sends commands keyed by ``order_id`` to one topic per participant:
``saga.coupon.commands``, ``saga.balance.commands``, ``saga.stock.commands``. Participants
answer on ``saga.replies`` (key ``order_id``) through their outbox; every reply names the
``command_id`` (the command's ``event_id``) it answers.

Rules every participant keeps (the order id is the business key):
- a command applies at most once per order; a re-sent command (new ``event_id``, same order)
  gets the same reply again and changes nothing more;
- a compensation (release, refund, restore) for an order never applied is a successful no-op,
  and it *fences* the order: a forward command for that order arriving later is refused with
  ``code="ALREADY_COMPENSATED"`` and changes nothing.
"""

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.messaging.envelope import Message

ALREADY_COMPENSATED = "ALREADY_COMPENSATED"
PROCESSING_FAILED = "PROCESSING_FAILED"
"""Failure code of a forward command its participant could not process at all (set aside as a
dead letter): the saga compensates, the current step included (a no-op that fences the order
where nothing was applied)."""


class SagaCommand(Message):
    """A command from the order saga to a participant."""

    order_id: str


class SagaReply(Message):
    """A participant's answer to a command."""

    order_id: str
    command_id: UUID


class SagaFailure(SagaReply):
    """A forward step that could not be applied; nothing was changed."""

    code: str
    reason: str = ""


# --- coupon_service -------------------------------------------------------------------------


class ReserveCoupon(SagaCommand):
    """Reserve ``user_coupon_id`` of ``user_id`` for the order, if usable at ``order_amount``."""

    event_type: ClassVar[str] = "ReserveCoupon"
    user_id: int
    user_coupon_id: int
    order_amount: int = Field(ge=0)


class ConfirmCoupon(SagaCommand):
    """Mark the coupon reserved by the order as used."""

    event_type: ClassVar[str] = "ConfirmCoupon"


class ReleaseCoupon(SagaCommand):
    """Make the coupon reserved by the order available again (compensation)."""

    event_type: ClassVar[str] = "ReleaseCoupon"


class CouponReserved(SagaReply):
    event_type: ClassVar[str] = "CouponReserved"
    user_coupon_id: int
    discount_amount: int = Field(ge=0)


class CouponReservationFailed(SagaFailure):
    """``code``: ``COUPON_UNAVAILABLE`` or ``ALREADY_COMPENSATED``."""

    event_type: ClassVar[str] = "CouponReservationFailed"


class CouponConfirmed(SagaReply):
    event_type: ClassVar[str] = "CouponConfirmed"


class CouponReleased(SagaReply):
    event_type: ClassVar[str] = "CouponReleased"


# --- balance_service ------------------------------------------------------------------------


class DeductBalance(SagaCommand):
    """Take ``amount`` from the user's balance for the order (history ``USE``)."""

    event_type: ClassVar[str] = "DeductBalance"
    user_id: int
    amount: int = Field(ge=0)


class RefundBalance(SagaCommand):
    """Give back what the order took (history ``REFUND``) (compensation)."""

    event_type: ClassVar[str] = "RefundBalance"


class BalanceDeducted(SagaReply):
    event_type: ClassVar[str] = "BalanceDeducted"
    amount: int
    balance_after: int


class BalanceDeductionFailed(SagaFailure):
    """``code``: ``INSUFFICIENT_BALANCE``, ``USER_NOT_FOUND`` or ``ALREADY_COMPENSATED``."""

    event_type: ClassVar[str] = "BalanceDeductionFailed"


class BalanceRefunded(SagaReply):
    """``amount`` is 0 when the order had deducted nothing."""

    event_type: ClassVar[str] = "BalanceRefunded"
    amount: int


# --- catalog_service ------------------------------------------------------------------------


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: int
    quantity: int = Field(ge=1)


class DeductStock(SagaCommand):
    """Take every line's quantity from stock, all or none."""

    event_type: ClassVar[str] = "DeductStock"
    lines: list[StockLine] = Field(min_length=1)


class RestoreStock(SagaCommand):
    """Put back exactly what the order took (compensation)."""

    event_type: ClassVar[str] = "RestoreStock"


class StockDeducted(SagaReply):
    event_type: ClassVar[str] = "StockDeducted"


class StockDeductionFailed(SagaFailure):
    """``code``: ``OUT_OF_STOCK``, ``PRODUCT_NOT_SELLABLE`` or ``ALREADY_COMPENSATED``."""

    event_type: ClassVar[str] = "StockDeductionFailed"
    product_id: int | None = None


class StockRestored(SagaReply):
    event_type: ClassVar[str] = "StockRestored"


COMMANDS = (
    ReserveCoupon,
    ConfirmCoupon,
    ReleaseCoupon,
    DeductBalance,
    RefundBalance,
    DeductStock,
    RestoreStock,
)
REPLIES = (
    CouponReserved,
    CouponReservationFailed,
    CouponConfirmed,
    CouponReleased,
    BalanceDeducted,
    BalanceDeductionFailed,
    BalanceRefunded,
    StockDeducted,
    StockDeductionFailed,
    StockRestored,
)
