"""Table-driven tests of the saga state machine (pure, no IO)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from order_service.domain import saga
from order_service.domain.saga import Comp, SagaState, Step, Timeout
from shared.events import saga as ev

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = saga.Policy(step_timeout_s=5, max_attempts=3, backoff_cap_s=30)
CID = uuid.uuid4()
OID = "00000000-0000-0000-0000-000000000001"


def base(coupon: bool = True, **changes) -> SagaState:
    state = SagaState(
        order_id=OID, user_id=7, total_amount=3000, lines=((10, 2), (11, 1)), user_coupon_id=5 if coupon else None
    )
    return replace(state, **changes)


def at(step: Step, **changes) -> SagaState:
    """A saga waiting in ``step`` after one send, with what earlier steps did."""
    done = {
        Step.RESERVING_COUPON: {},
        Step.DEDUCTING_BALANCE: {"coupon_reserved": True, "discount_amount": 500},
        Step.DEDUCTING_STOCK: {
            "coupon_reserved": True,
            "discount_amount": 500,
            "balance_deducted": True,
            "paid_amount": 2500,
        },
    }[step]
    values = {"attempts": 1, "deadline": NOW + timedelta(seconds=5), **done, **changes}
    return base(step=step, **values)


def names(decision: saga.Decision) -> list[str]:
    return [cmd.event_type for _, cmd in decision.commands]


def reply(cls, **fields):
    return cls(order_id=OID, command_id=CID, **fields)


LATE = NOW + timedelta(seconds=6)


def test_start_with_coupon_reserves_it_first() -> None:
    decision = saga.start(base(), NOW, POLICY)
    assert decision.state.step is Step.RESERVING_COUPON
    topic, cmd = decision.commands[0]
    assert topic == "saga.coupon.commands" and isinstance(cmd, ev.ReserveCoupon)
    assert (cmd.user_coupon_id, cmd.order_amount, cmd.user_id) == (5, 3000, 7)
    # the deadline waits for the broker's acknowledgement of the command, which counts the attempt
    assert decision.state.deadline is None and decision.state.attempts == 0
    assert decision.state.send_id == str(cmd.event_id) and decision.state.wait_s == 5
    armed = saga.arm(decision.state, str(cmd.event_id), LATE)
    assert armed.deadline == LATE + timedelta(seconds=5) and armed.attempts == 1 and armed.send_id is None


def acked(decision: saga.Decision, now: datetime) -> SagaState:
    """The decision's state once the broker acknowledged its last command at ``now``."""
    return saga.arm(decision.state, str(decision.commands[-1][1].event_id), now)


def test_start_without_coupon_deducts_the_whole_total() -> None:
    decision = saga.start(base(coupon=False), NOW, POLICY)
    assert decision.state.step is Step.DEDUCTING_BALANCE
    assert names(decision) == ["DeductBalance"] and decision.commands[0][1].amount == 3000


@pytest.mark.parametrize(
    ("state", "event", "step", "commands", "outcome"),
    [
        # successes
        (
            at(Step.RESERVING_COUPON),
            reply(ev.CouponReserved, user_coupon_id=5, discount_amount=500),
            Step.DEDUCTING_BALANCE,
            ["DeductBalance"],
            None,
        ),
        (
            at(Step.DEDUCTING_BALANCE),
            reply(ev.BalanceDeducted, amount=2500, balance_after=0),
            Step.DEDUCTING_STOCK,
            ["DeductStock"],
            None,
        ),
        (
            at(Step.DEDUCTING_STOCK),
            reply(ev.StockDeducted),
            Step.CONFIRMING_COUPON,
            ["ConfirmCoupon"],
            ("COMPLETED", None),
        ),
        (
            at(Step.DEDUCTING_STOCK, user_coupon_id=None, coupon_reserved=False, discount_amount=0),
            reply(ev.StockDeducted),
            Step.DONE,
            [],
            ("COMPLETED", None),
        ),
        # failures: compensate what was done, in reverse
        (
            at(Step.RESERVING_COUPON),
            reply(ev.CouponReservationFailed, code="COUPON_UNAVAILABLE"),
            Step.FAILED,
            [],
            ("FAILED", "COUPON_UNAVAILABLE"),
        ),
        (
            at(Step.DEDUCTING_BALANCE),
            reply(ev.BalanceDeductionFailed, code="INSUFFICIENT_BALANCE"),
            Step.COMPENSATING,
            ["ReleaseCoupon"],
            None,
        ),
        (
            at(Step.DEDUCTING_BALANCE, user_coupon_id=None, coupon_reserved=False, discount_amount=0),
            reply(ev.BalanceDeductionFailed, code="INSUFFICIENT_BALANCE"),
            Step.FAILED,
            [],
            ("FAILED", "INSUFFICIENT_BALANCE"),
        ),
        (
            at(Step.DEDUCTING_STOCK),
            reply(ev.StockDeductionFailed, code="OUT_OF_STOCK"),
            Step.COMPENSATING,
            ["RefundBalance", "ReleaseCoupon"],
            None,
        ),
        (
            at(Step.DEDUCTING_STOCK),
            reply(ev.StockDeductionFailed, code="PRODUCT_NOT_SELLABLE"),
            Step.COMPENSATING,
            ["RefundBalance", "ReleaseCoupon"],
            None,
        ),
        # timeouts below the limit: the same step again
        (at(Step.RESERVING_COUPON), Timeout(), Step.RESERVING_COUPON, ["ReserveCoupon"], None),
        (at(Step.DEDUCTING_BALANCE), Timeout(), Step.DEDUCTING_BALANCE, ["DeductBalance"], None),
        (at(Step.DEDUCTING_STOCK), Timeout(), Step.DEDUCTING_STOCK, ["DeductStock"], None),
        # timeouts at the limit: compensate including the timed-out step
        (at(Step.RESERVING_COUPON, attempts=3), Timeout(), Step.COMPENSATING, ["ReleaseCoupon"], None),
        (
            at(Step.DEDUCTING_BALANCE, attempts=3),
            Timeout(),
            Step.COMPENSATING,
            ["RefundBalance", "ReleaseCoupon"],
            None,
        ),
        (
            at(Step.DEDUCTING_STOCK, attempts=3),
            Timeout(),
            Step.COMPENSATING,
            ["RestoreStock", "RefundBalance", "ReleaseCoupon"],
            None,
        ),
        (
            at(Step.DEDUCTING_STOCK, attempts=3, user_coupon_id=None, coupon_reserved=False),
            Timeout(),
            Step.COMPENSATING,
            ["RestoreStock", "RefundBalance"],
            None,
        ),
    ],
)
def test_forward_steps(state, event, step, commands, outcome) -> None:
    decision = saga.transition(state, event, LATE, POLICY)
    assert decision.state.step is step
    assert names(decision) == commands
    got = (decision.outcome.status, decision.outcome.failure_code) if decision.outcome else None
    assert got == outcome
    if step is Step.COMPENSATING:
        assert decision.state.pending == tuple(Comp(c) for c in commands)
        assert decision.state.failure_code in {
            "INSUFFICIENT_BALANCE",
            "OUT_OF_STOCK",
            "PRODUCT_NOT_SELLABLE",
            saga.TIMEOUT_CODE,
        }
    assert all(cmd.order_id == OID for _, cmd in decision.commands)


def test_amount_due_is_total_minus_discount_and_discount_is_capped() -> None:
    decision = saga.transition(
        at(Step.RESERVING_COUPON), reply(ev.CouponReserved, user_coupon_id=5, discount_amount=500), NOW, POLICY
    )
    assert decision.commands[0][1].amount == 2500
    capped = saga.transition(
        at(Step.RESERVING_COUPON), reply(ev.CouponReserved, user_coupon_id=5, discount_amount=9999), NOW, POLICY
    )
    assert capped.commands[0][1].amount == 0 and capped.state.discount_amount == 3000


def test_resend_counts_attempts_and_moves_the_deadline_once_acknowledged() -> None:
    decision = saga.transition(at(Step.DEDUCTING_BALANCE), Timeout(), LATE, POLICY)
    assert decision.state.attempts == 1 and decision.state.deadline is None  # not left yet
    sent = LATE + timedelta(seconds=20)  # the broker was down for 20 s meanwhile
    state = acked(decision, sent)
    assert state.attempts == 2 and state.deadline == sent + timedelta(seconds=5)
    first = at(Step.DEDUCTING_BALANCE)
    assert decision.commands[0][1].event_id != saga.forward_command(first)[1].event_id


def test_a_saga_whose_command_waits_for_its_send_never_times_out() -> None:
    waiting = saga.start(base(coupon=False), NOW, POLICY).state
    much_later = NOW + timedelta(hours=1)
    assert saga.transition(waiting, Timeout(), much_later, POLICY).state == waiting
    # then the command leaves: the full step timeout runs from there
    state = saga.arm(waiting, waiting.send_id, much_later)
    assert saga.transition(state, Timeout(), much_later + timedelta(seconds=4), POLICY).state == state
    assert names(saga.transition(state, Timeout(), much_later + timedelta(seconds=5), POLICY)) == ["DeductBalance"]


def test_only_the_awaited_send_arms_the_deadline() -> None:
    first = saga.transition(at(Step.DEDUCTING_BALANCE), Timeout(), LATE, POLICY)
    second = saga.transition(acked(first, LATE), Timeout(), LATE + timedelta(seconds=5), POLICY)
    old_id = str(first.commands[0][1].event_id)
    assert saga.arm(second.state, old_id, LATE) == second.state  # an older send of the same step
    moved_on = saga.transition(
        second.state, reply(ev.BalanceDeducted, amount=2500, balance_after=0), LATE, POLICY
    ).state
    assert saga.arm(moved_on, str(second.commands[0][1].event_id), LATE) == moved_on  # the saga moved on
    assert moved_on.step is Step.DEDUCTING_STOCK and moved_on.attempts == 0 and moved_on.deadline is None


def test_payment_timeout_after_max_acknowledged_sends_only() -> None:
    decision = saga.start(base(coupon=False), NOW, POLICY)
    now = NOW
    for attempt in range(1, POLICY.max_attempts + 1):
        state = acked(decision, now)
        assert state.attempts == attempt
        now = state.deadline
        decision = saga.transition(state, Timeout(), now, POLICY)
        assert decision.outcome is None
    assert decision.state.step is Step.COMPENSATING and decision.state.failure_code == saga.TIMEOUT_CODE
    assert names(decision) == ["RefundBalance"] and decision.state.deadline is None


def test_early_timeout_is_stale_and_ignored() -> None:
    state = at(Step.DEDUCTING_STOCK)
    assert saga.transition(state, Timeout(), NOW, POLICY).state == state


@pytest.mark.parametrize("failing", ["INSUFFICIENT_BALANCE", "OUT_OF_STOCK", saga.TIMEOUT_CODE])
def test_compensation_fails_the_order_once_every_ack_arrived(failing) -> None:
    state = base(
        step=Step.COMPENSATING,
        attempts=1,
        deadline=LATE,
        failure_code=failing,
        pending=(Comp.RESTORE_STOCK, Comp.REFUND_BALANCE, Comp.RELEASE_COUPON),
    )
    acks = [reply(ev.CouponReleased), reply(ev.StockRestored), reply(ev.BalanceRefunded, amount=2500)]
    for ack in acks[:-1]:
        decision = saga.transition(state, ack, NOW, POLICY)
        assert decision.outcome is None and decision.commands == []
        state = decision.state
    assert state.pending == (Comp.REFUND_BALANCE,)
    final = saga.transition(state, acks[-1], NOW, POLICY)
    assert final.state.step is Step.FAILED and final.state.deadline is None
    assert (final.outcome.status, final.outcome.failure_code) == ("FAILED", failing)


def test_unacknowledged_compensations_are_resent_forever_with_capped_backoff() -> None:
    state = base(
        step=Step.COMPENSATING,
        attempts=1,
        deadline=NOW,
        failure_code="OUT_OF_STOCK",
        pending=(Comp.REFUND_BALANCE, Comp.RELEASE_COUPON),
    )
    delays = []
    for _ in range(10):
        now = state.deadline
        decision = saga.transition(state, Timeout(), now, POLICY)
        assert names(decision) == ["RefundBalance", "ReleaseCoupon"] and decision.outcome is None
        assert decision.state.deadline is None and decision.state.attempts == state.attempts
        state = acked(decision, now)
        delays.append((state.deadline - now).total_seconds())
    assert delays[:3] == [10, 20, 30] and max(delays) == 30 and state.step is Step.COMPENSATING


def test_coupon_confirmation_is_resent_until_acknowledged() -> None:
    state = acked(saga.transition(at(Step.DEDUCTING_STOCK), reply(ev.StockDeducted), NOW, POLICY), NOW)
    for _ in range(5):
        decision = saga.transition(state, Timeout(), state.deadline, POLICY)
        assert names(decision) == ["ConfirmCoupon"] and decision.outcome is None
        state = acked(decision, state.deadline)
    done = saga.transition(state, reply(ev.CouponConfirmed), NOW, POLICY)
    assert done.state.step is Step.DONE and done.state.deadline is None and done.outcome is None


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (at(Step.DEDUCTING_BALANCE), reply(ev.CouponReserved, user_coupon_id=5, discount_amount=500)),
        (at(Step.DEDUCTING_STOCK), reply(ev.BalanceDeducted, amount=2500, balance_after=0)),
        (at(Step.DEDUCTING_STOCK), reply(ev.CouponReleased)),
        (at(Step.RESERVING_COUPON), reply(ev.StockDeducted)),
        (
            base(step=Step.COMPENSATING, pending=(Comp.RELEASE_COUPON,), failure_code="X"),
            reply(ev.BalanceDeducted, amount=1, balance_after=0),
        ),
        (
            base(step=Step.COMPENSATING, pending=(Comp.RELEASE_COUPON,), failure_code="X"),
            reply(ev.BalanceRefunded, amount=0),
        ),
        (base(step=Step.DONE), reply(ev.StockDeducted)),
        (base(step=Step.FAILED, failure_code="OUT_OF_STOCK"), reply(ev.CouponReleased)),
        (base(step=Step.FAILED, failure_code="OUT_OF_STOCK"), Timeout()),
    ],
)
def test_replies_not_awaited_change_nothing(state, event) -> None:
    decision = saga.transition(state, event, LATE, POLICY)
    assert decision.state == state and decision.commands == [] and decision.outcome is None


def test_state_round_trips_through_json() -> None:
    state = base(
        step=Step.COMPENSATING,
        attempts=2,
        deadline=NOW,
        pending=(Comp.REFUND_BALANCE,),
        failure_code="OUT_OF_STOCK",
        request_id="r1",
        send_id=str(CID),
        wait_s=10.0,
    )
    data = state.to_json()
    assert not saga.TIMING & data.keys()  # columns of their own: the relay's hook updates them alone
    assert SagaState.from_json(data, deadline=NOW, attempts=2, send_id=str(CID), wait_s=10.0) == state


@pytest.mark.parametrize(
    ("state", "failure", "commands"),
    [
        (at(Step.RESERVING_COUPON), ev.CouponReservationFailed, ["ReleaseCoupon"]),
        (at(Step.DEDUCTING_BALANCE), ev.BalanceDeductionFailed, ["RefundBalance", "ReleaseCoupon"]),
        (at(Step.DEDUCTING_STOCK), ev.StockDeductionFailed, ["RestoreStock", "RefundBalance", "ReleaseCoupon"]),
    ],
)
def test_a_step_set_aside_as_a_dead_letter_is_undone_too_and_fails_processing_failed(state, failure, commands) -> None:
    """PROCESSING_FAILED: the participant set the command aside; undoing the current step as well
    is a no-op where nothing was applied (it fences the order) and covers whatever was."""
    decision = saga.transition(state, reply(failure, code=ev.PROCESSING_FAILED), LATE, POLICY)
    assert decision.state.step is Step.COMPENSATING and names(decision) == commands
    assert decision.state.failure_code == ev.PROCESSING_FAILED
    for name in commands:  # once every compensation is acknowledged: FAILED, PROCESSING_FAILED
        ack = {
            "ReleaseCoupon": reply(ev.CouponReleased),
            "RefundBalance": reply(ev.BalanceRefunded, amount=0),
            "RestoreStock": reply(ev.StockRestored),
        }[name]
        decision = saga.transition(decision.state, ack, LATE, POLICY)
    assert decision.state.step is Step.FAILED
    assert decision.outcome is not None and decision.outcome.failure_code == ev.PROCESSING_FAILED
