"""The saga history derived from transitions (pure, no IO)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from order_service.domain import history, saga
from order_service.domain.saga import SagaState, Step, Timeout
from shared.events import saga as ev

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = saga.Policy(step_timeout_s=5, max_attempts=2, backoff_cap_s=30)
OID = "00000000-0000-0000-0000-000000000002"


def started(coupon: bool = True) -> saga.Decision:
    state = SagaState(
        order_id=OID, user_id=7, total_amount=3000, lines=((10, 2),), user_coupon_id=5 if coupon else None
    )
    return saga.start(state, NOW, POLICY)


def kinds(entries: list[history.Entry]) -> list[tuple[str, str]]:
    return [(e.kind, e.name) for e in entries]


def test_start_records_the_first_command_with_its_fields_step_and_attempt() -> None:
    entries = history.sent(started())
    assert kinds(entries) == [("command", "ReserveCoupon")]
    detail = entries[0].detail
    assert detail["user_coupon_id"] == 5 and detail["order_amount"] == 3000
    assert detail["step"] == "RESERVING_COUPON" and detail["attempt"] == 1 and "event_id" in detail
    assert "order_id" not in detail and entries[0].order_id == OID


def test_failure_reply_then_compensation_then_outcome() -> None:
    state = saga.transition(
        started().state,
        ev.CouponReserved(order_id=OID, command_id=uuid.uuid4(), user_coupon_id=5, discount_amount=500),
        NOW,
        POLICY,
    ).state
    failure = ev.BalanceDeductionFailed(order_id=OID, command_id=uuid.uuid4(), code="INSUFFICIENT_BALANCE")
    decision = saga.transition(state, failure, NOW, POLICY)
    entries = history.applied(state, failure, decision)
    assert kinds(entries) == [("reply", "BalanceDeductionFailed"), ("compensation", "ReleaseCoupon")]
    assert entries[0].detail["code"] == "INSUFFICIENT_BALANCE" and "ignored" not in entries[0].detail
    ack = ev.CouponReleased(order_id=OID, command_id=uuid.uuid4())
    done = saga.transition(decision.state, ack, NOW, POLICY)
    assert kinds(history.applied(decision.state, ack, done)) == [("reply", "CouponReleased"), ("outcome", "FAILED")]
    assert history.applied(decision.state, ack, done)[1].detail == {"failure_code": "INSUFFICIENT_BALANCE"}


def test_a_reply_that_changes_nothing_is_kept_as_ignored() -> None:
    state = started(coupon=False).state  # awaiting DeductBalance
    stray = ev.StockDeducted(order_id=OID, command_id=uuid.uuid4())
    entries = history.applied(state, stray, saga.transition(state, stray, NOW, POLICY))
    assert kinds(entries) == [("reply", "StockDeducted")] and entries[0].detail["ignored"] is True


def test_timeouts_resend_then_compensate_and_a_stale_timeout_leaves_no_trace() -> None:
    waiting = started(coupon=False).state
    state = saga.arm(waiting, waiting.send_id, NOW)  # the broker acknowledged the first send at NOW
    assert history.applied(state, Timeout(), saga.transition(state, Timeout(), NOW, POLICY)) == []
    late = NOW + timedelta(seconds=6)
    decision = saga.transition(state, Timeout(), late, POLICY)
    entries = history.applied(state, Timeout(), decision)
    assert kinds(entries) == [("timeout", "DEDUCTING_BALANCE"), ("command", "DeductBalance")]
    assert entries[0].detail == {"step": "DEDUCTING_BALANCE", "attempts": 1} and entries[1].detail["attempt"] == 2
    resent = saga.arm(decision.state, decision.state.send_id, late)
    again = saga.transition(resent, Timeout(), late + timedelta(seconds=6), POLICY)
    assert kinds(history.applied(resent, Timeout(), again)) == [
        ("timeout", "DEDUCTING_BALANCE"),
        ("compensation", "RefundBalance"),
    ]


def test_completion_records_the_outcome_after_the_confirmation_command() -> None:
    state = replace(started().state, step=Step.DEDUCTING_STOCK, coupon_reserved=True, balance_deducted=True)
    done = ev.StockDeducted(order_id=OID, command_id=uuid.uuid4())
    entries = history.applied(state, done, saga.transition(state, done, NOW, POLICY))
    assert kinds(entries)[0] == ("reply", "StockDeducted") and ("outcome", "COMPLETED") in kinds(entries)
