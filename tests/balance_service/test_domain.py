"""Unit tests of the pure rules (no IO)."""

from __future__ import annotations

import pytest

from balance_service.api import cursor
from balance_service.domain.commands import Charge
from balance_service.domain.errors import BalanceLimitExceededError, UserNotFoundError
from balance_service.domain.model import MAX_BALANCE, can_charge, can_deduct, charge_result
from balance_service.domain.payments import (
    Deducted,
    DeductRefused,
    Payment,
    PaymentStatus,
    RefundAction,
    Refunded,
    deduct_result,
    fence,
    refund_action,
    refund_replay,
    refused,
    replay_deduct,
)
from shared.web.problems import ValidationProblem


@pytest.mark.parametrize(
    ("balance", "amount", "ok"),
    [
        (0, 1, True),
        (0, MAX_BALANCE, True),
        (1, MAX_BALANCE, False),
        (MAX_BALANCE, 1, False),
        (MAX_BALANCE - 1, 1, True),
        (5, 0, False),
        (5, -1, False),
    ],
)
def test_can_charge(balance: int, amount: int, ok: bool) -> None:
    assert can_charge(balance, amount) is ok


@pytest.mark.parametrize(
    ("balance", "amount", "ok"),
    [
        (1000, 1000, True),
        (999, 1000, False),
        (0, 0, True),
        (5, -1, False),
    ],
)
def test_can_deduct(balance: int, amount: int, ok: bool) -> None:
    assert can_deduct(balance, amount) is ok


@pytest.mark.parametrize(
    ("balance", "held", "amount", "ok"),
    [
        (7_000_000, 3_000_000, 1, False),
        (7_000_000, 3_000_000, 0, False),
        (6_000_000, 3_000_000, 1_000_000, True),
        (0, MAX_BALANCE, 1, False),
    ],
)
def test_can_charge_counts_held_money(balance: int, held: int, amount: int, ok: bool) -> None:
    assert can_charge(balance, amount, held=held) is ok


def test_charge_refusal_names_the_held_amount() -> None:
    with pytest.raises(BalanceLimitExceededError, match="3000000 held by orders in flight"):
        charge_result(1, 3_000_000, 7_000_000, None, 3_000_000)


def test_charge_result() -> None:
    assert charge_result(1, 10, 5, 15) == 15
    with pytest.raises(UserNotFoundError):
        charge_result(1, 10, None, None)
    with pytest.raises(BalanceLimitExceededError, match="balance 9999999 plus 2"):
        charge_result(1, 2, MAX_BALANCE - 1, None)


def test_deduct_result() -> None:
    assert deduct_result(1, 300, 1000, 700) == Deducted(300, 700)
    assert deduct_result(1, 300, None, None).code == "USER_NOT_FOUND"  # type: ignore[union-attr]
    refusal = deduct_result(1, 3000, 1000, None)
    assert refusal == DeductRefused("INSUFFICIENT_BALANCE", "balance 1000 is less than the amount due 3000")


def test_replay_answers_the_same() -> None:
    deducted = Payment("o", 1, 300, PaymentStatus.DEDUCTED, 700)
    assert replay_deduct(deducted) == Deducted(300, 700)
    assert replay_deduct(Payment("o", 1, 300, PaymentStatus.REFUNDED, 700)).code == "ALREADY_COMPENSATED"  # type: ignore[union-attr]
    assert replay_deduct(fence("o")).code == "ALREADY_COMPENSATED"  # type: ignore[union-attr]
    refusal = DeductRefused("INSUFFICIENT_BALANCE", "low")
    assert replay_deduct(refused("o", 1, 300, refusal)) == refusal


@pytest.mark.parametrize(
    ("payment", "action"),
    [
        (None, RefundAction.FENCE),
        (Payment("o", 1, 300, PaymentStatus.DEDUCTED, 700), RefundAction.GIVE_BACK),
        (Payment("o", 1, 300, PaymentStatus.REFUNDED, 700), RefundAction.DONE),
        (Payment("o", 1, 300, PaymentStatus.REFUSED, None, "INSUFFICIENT_BALANCE"), RefundAction.DONE),
    ],
)
def test_refund_action(payment: Payment | None, action: RefundAction) -> None:
    assert refund_action(payment) is action


def test_refund_replay() -> None:
    assert refund_replay(Payment("o", 1, 300, PaymentStatus.REFUNDED, 700)) == Refunded(300)
    assert refund_replay(fence("o")) == Refunded(0)
    assert refund_replay(Payment("o", 1, 300, PaymentStatus.REFUSED)) == Refunded(0)


def test_fingerprint_depends_on_the_body_only() -> None:
    assert Charge(1, 10, "k").fingerprint == Charge(1, 10, "other").fingerprint != Charge(1, 11, "k").fingerprint


@pytest.mark.parametrize("last_id", [1, 42, 2**63 - 1])
def test_cursor_round_trip(last_id: int) -> None:
    assert cursor.decode(cursor.encode(last_id)) == last_id


@pytest.mark.parametrize("bad", ["", "!!", "aDow", "eDox", "aDotMQ", "aDox" + "0" * 30, "w6k"])
def test_malformed_cursor(bad: str) -> None:
    with pytest.raises(ValidationProblem):
        cursor.decode(bad)
