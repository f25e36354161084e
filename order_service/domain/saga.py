"""The payment saga as a pure state machine: ``transition(state, event, now, policy) -> Decision``.

Forward steps: RESERVING_COUPON (only with a coupon) -> DEDUCTING_BALANCE -> DEDUCTING_STOCK.
``StockDeducted`` completes the order at once; with a coupon the saga then keeps re-sending
``ConfirmCoupon`` until ``CouponConfirmed`` (CONFIRMING_COUPON), which never delays the order.
A failure reply compensates what was done, all compensations at once in reverse order
(COMPENSATING); when every one is acknowledged the order is FAILED with the failing step's code.
A step without a reply by its deadline is re-sent (participants are idempotent per order) up to
``max_attempts`` sends, then compensated *including itself*: a compensation of something never
applied is a no-op that fences a late forward command. Compensations and the coupon confirmation
are re-sent with a capped backoff until acknowledged, never given up.
Replies that do not match what the saga awaits (stale, duplicate) change nothing.

A deadline runs from the broker's acknowledgement of the command, not from the decision to send
it: a transition that sends leaves the saga *waiting for its send* (``deadline`` None, ``send_id``
the event id of its last command, ``wait_s`` the timeout to arm), and :func:`arm` (mirrored in SQL
by the outbox relay's hook, ``db.repository.ARM_SENT``) starts the deadline and counts the attempt
once that command was acknowledged. So a broker outage, during which nothing leaves the outbox,
neither runs a deadline down nor counts re-sends: it delays the order, it does not fail it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.events import saga as ev

TIMEOUT_CODE = "PAYMENT_TIMEOUT"
"""Failure code of an order whose participant never answered a forward step."""


class Step(StrEnum):
    RESERVING_COUPON = "RESERVING_COUPON"
    DEDUCTING_BALANCE = "DEDUCTING_BALANCE"
    DEDUCTING_STOCK = "DEDUCTING_STOCK"
    COMPENSATING = "COMPENSATING"
    CONFIRMING_COUPON = "CONFIRMING_COUPON"
    DONE = "DONE"
    FAILED = "FAILED"


class Participant(StrEnum):
    """Who carries out a saga command. The value names the participant's command channel; the
    service layer maps each participant to its topic (``service.saga_runner.COMMAND_TOPIC``)."""

    COUPON = "saga.coupon.commands"
    BALANCE = "saga.balance.commands"
    STOCK = "saga.stock.commands"


class Comp(StrEnum):
    """Compensations, named after the command that performs them."""

    RESTORE_STOCK = "RestoreStock"
    REFUND_BALANCE = "RefundBalance"
    RELEASE_COUPON = "ReleaseCoupon"


FORWARD = (Step.RESERVING_COUPON, Step.DEDUCTING_BALANCE, Step.DEDUCTING_STOCK)
TERMINAL = (Step.DONE, Step.FAILED)


@dataclass(frozen=True)
class Policy:
    """Timing of the saga (from settings)."""

    step_timeout_s: float = 5.0
    max_attempts: int = 3
    backoff_cap_s: float = 30.0

    def retry_delay(self, attempts: int) -> timedelta:
        """Delay before re-sending a compensation already sent ``attempts`` times."""
        return timedelta(seconds=min(self.step_timeout_s * 2 ** max(attempts - 1, 0), self.backoff_cap_s))


@dataclass(frozen=True)
class SagaState:
    """Everything the saga needs, persisted as one row (``sagas``)."""

    order_id: str
    user_id: int
    total_amount: int
    lines: tuple[tuple[int, int], ...]  # (product_id, quantity)
    user_coupon_id: int | None = None
    request_id: str | None = None
    step: Step = Step.DEDUCTING_BALANCE
    attempts: int = 0  # sends of the current step (or compensations) acknowledged by the broker
    deadline: datetime | None = None  # None: nothing awaited, or the command still waits for its send
    send_id: str | None = None  # event id of the command whose acknowledgement arms the deadline
    wait_s: float = 0.0  # seconds from that acknowledgement to the deadline
    discount_amount: int = 0
    paid_amount: int = 0
    coupon_reserved: bool = False
    balance_deducted: bool = False
    failure_code: str | None = None
    pending: tuple[Comp, ...] = ()
    traceparent: str | None = None  # the order's trace (W3C), for commands sent after a timeout

    @property
    def amount_due(self) -> int:
        return self.total_amount - self.discount_amount

    def to_json(self) -> dict[str, Any]:
        """The ``data`` column: everything but the timing fields, which are columns of their own (the
        relay's hook updates them without reading ``data``)."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in TIMING}
        data["lines"] = [list(line) for line in self.lines]
        data["pending"] = [str(c) for c in self.pending]
        data["step"] = str(self.step)
        return data

    @classmethod
    def from_json(
        cls,
        data: dict[str, Any],
        *,
        deadline: datetime | None,
        attempts: int,
        send_id: str | None = None,
        wait_s: float = 0.0,
    ) -> SagaState:
        values = {k: v for k, v in data.items() if k not in TIMING}
        values["lines"] = tuple((int(p), int(q)) for p, q in data["lines"])
        values["pending"] = tuple(Comp(c) for c in data["pending"])
        values["step"] = Step(data["step"])
        return cls(**values, deadline=deadline, attempts=attempts, send_id=send_id, wait_s=wait_s)


TIMING = frozenset({"attempts", "deadline", "send_id", "wait_s"})
"""The fields stored as columns of ``sagas`` rather than in ``data``."""


@dataclass(frozen=True)
class Timeout:
    """The sweeper saw the saga past its deadline."""


@dataclass(frozen=True)
class Outcome:
    """The order's final status, decided by this transition."""

    status: str  # "COMPLETED" | "FAILED"
    failure_code: str | None = None


@dataclass(frozen=True)
class Decision:
    state: SagaState
    commands: list[tuple[Participant, ev.SagaCommand]] = field(default_factory=list)
    outcome: Outcome | None = None

    @property
    def changed(self) -> bool:
        return bool(self.commands) or self.outcome is not None


Event = ev.SagaReply | Timeout


# --- commands -------------------------------------------------------------------------------


def forward_command(state: SagaState) -> tuple[Participant, ev.SagaCommand]:
    """The command of the current forward step (a fresh event id each time it is sent)."""
    oid = state.order_id
    if state.step is Step.RESERVING_COUPON:
        assert state.user_coupon_id is not None
        return Participant.COUPON, ev.ReserveCoupon(
            order_id=oid, user_id=state.user_id, user_coupon_id=state.user_coupon_id, order_amount=state.total_amount
        )
    if state.step is Step.DEDUCTING_BALANCE:
        return Participant.BALANCE, ev.DeductBalance(order_id=oid, user_id=state.user_id, amount=state.amount_due)
    if state.step is Step.DEDUCTING_STOCK:
        lines = [ev.StockLine(product_id=p, quantity=q) for p, q in state.lines]
        return Participant.STOCK, ev.DeductStock(order_id=oid, lines=lines)
    if state.step is Step.CONFIRMING_COUPON:
        return Participant.COUPON, ev.ConfirmCoupon(order_id=oid)
    raise ValueError(f"no forward command in step {state.step}")


def compensation_command(order_id: str, comp: Comp) -> tuple[Participant, ev.SagaCommand]:
    if comp is Comp.RESTORE_STOCK:
        return Participant.STOCK, ev.RestoreStock(order_id=order_id)
    if comp is Comp.REFUND_BALANCE:
        return Participant.BALANCE, ev.RefundBalance(order_id=order_id)
    return Participant.COUPON, ev.ReleaseCoupon(order_id=order_id)


# --- transitions ----------------------------------------------------------------------------


def start(state: SagaState, now: datetime, policy: Policy) -> Decision:
    """The saga of a new order: its first step and command."""
    step = Step.RESERVING_COUPON if state.user_coupon_id is not None else Step.DEDUCTING_BALANCE
    return _send_step(replace(state, step=step, attempts=0), now, policy)


def _sending(state: SagaState, commands: list[tuple[Participant, ev.SagaCommand]], wait: timedelta) -> Decision:
    """Send ``commands``; the deadline (``wait`` after the last one's acknowledgement) is not armed yet."""
    new = replace(state, deadline=None, send_id=str(commands[-1][1].event_id), wait_s=wait.total_seconds())
    return Decision(new, commands)


def _idle(state: SagaState, **changes: Any) -> SagaState:
    """Nothing awaited any more: no deadline, no send to wait for."""
    return replace(state, attempts=0, deadline=None, send_id=None, wait_s=0.0, **changes)


def _send_step(state: SagaState, now: datetime, policy: Policy) -> Decision:
    if state.step is Step.CONFIRMING_COUPON:
        wait = policy.retry_delay(state.attempts + 1)
    else:
        wait = timedelta(seconds=policy.step_timeout_s)
    return _sending(state, [forward_command(state)], wait)


def _compensate(state: SagaState, code: str, comps: list[Comp], now: datetime, policy: Policy) -> Decision:
    """Undo ``comps`` (already in reverse order); fail at once when there is nothing to undo."""
    if not comps:
        return Decision(_idle(state, step=Step.FAILED, failure_code=code), [], Outcome("FAILED", code))
    new = replace(state, step=Step.COMPENSATING, attempts=0, failure_code=code, pending=tuple(comps))
    return _sending(new, [compensation_command(state.order_id, c) for c in comps], policy.retry_delay(1))


def arm(state: SagaState, sent_id: str, now: datetime) -> SagaState:
    """The broker acknowledged the command ``sent_id`` at ``now`` (the database's clock): when it is
    the one the saga waits to send, count the attempt and start the deadline; otherwise (an older
    send, the saga moved on) nothing changes. ``ARM_SENT`` in ``db.repository`` is this rule in SQL."""
    if state.send_id is None or state.send_id != sent_id:
        return state
    return replace(state, attempts=state.attempts + 1, deadline=now + timedelta(seconds=state.wait_s), send_id=None)


def _done_so_far(state: SagaState, *, including_current: bool) -> list[Comp]:
    comps = []
    if including_current and state.step is Step.DEDUCTING_STOCK:
        comps.append(Comp.RESTORE_STOCK)
    if state.balance_deducted or (including_current and state.step is Step.DEDUCTING_BALANCE):
        comps.append(Comp.REFUND_BALANCE)
    if state.coupon_reserved or (including_current and state.step is Step.RESERVING_COUPON):
        comps.append(Comp.RELEASE_COUPON)
    return comps


def _on_success(state: SagaState, reply: ev.SagaReply, now: datetime, policy: Policy) -> Decision:
    if isinstance(reply, ev.CouponReserved):
        discount = min(reply.discount_amount, state.total_amount)
        nxt = replace(state, step=Step.DEDUCTING_BALANCE, attempts=0, coupon_reserved=True, discount_amount=discount)
        return _send_step(nxt, now, policy)
    if isinstance(reply, ev.BalanceDeducted):
        nxt = replace(state, step=Step.DEDUCTING_STOCK, attempts=0, balance_deducted=True, paid_amount=reply.amount)
        return _send_step(nxt, now, policy)
    # StockDeducted: the order is complete now; the coupon confirmation follows on its own.
    if state.coupon_reserved:
        decision = _send_step(replace(state, step=Step.CONFIRMING_COUPON, attempts=0), now, policy)
        return replace(decision, outcome=Outcome("COMPLETED"))
    return Decision(_idle(state, step=Step.DONE), [], Outcome("COMPLETED"))


_AWAITED: dict[Step, tuple[type[ev.SagaReply], type[ev.SagaFailure]]] = {
    Step.RESERVING_COUPON: (ev.CouponReserved, ev.CouponReservationFailed),
    Step.DEDUCTING_BALANCE: (ev.BalanceDeducted, ev.BalanceDeductionFailed),
    Step.DEDUCTING_STOCK: (ev.StockDeducted, ev.StockDeductionFailed),
}
_ACKS = {
    ev.StockRestored: Comp.RESTORE_STOCK,
    ev.BalanceRefunded: Comp.REFUND_BALANCE,
    ev.CouponReleased: Comp.RELEASE_COUPON,
}


def _on_forward_reply(state: SagaState, reply: ev.SagaReply, now: datetime, policy: Policy) -> Decision:
    success, failure = _AWAITED[state.step]
    if isinstance(reply, failure):
        # PROCESSING_FAILED: the participant set the command aside unapplied; undoing the current
        # step too costs a no-op (and fences the order) and is safe whatever was applied.
        current = reply.code == ev.PROCESSING_FAILED
        return _compensate(state, reply.code, _done_so_far(state, including_current=current), now, policy)
    if isinstance(reply, success):
        return _on_success(state, reply, now, policy)
    return Decision(state)


def _on_ack(state: SagaState, reply: ev.SagaReply) -> Decision:
    comp = _ACKS.get(type(reply))
    if comp is None or comp not in state.pending:
        return Decision(state)
    pending = tuple(c for c in state.pending if c is not comp)
    if pending:
        return Decision(replace(state, pending=pending), [])
    return Decision(_idle(state, step=Step.FAILED, pending=()), [], Outcome("FAILED", state.failure_code))


def _on_timeout(state: SagaState, now: datetime, policy: Policy) -> Decision:
    if state.deadline is None or now < state.deadline:
        return Decision(state)  # stale (the saga moved on since the sweeper looked) or not sent yet
    if state.step is Step.COMPENSATING:
        commands = [compensation_command(state.order_id, c) for c in state.pending]
        return _sending(state, commands, policy.retry_delay(state.attempts + 1))
    if state.step is Step.CONFIRMING_COUPON or state.attempts < policy.max_attempts:
        return _send_step(state, now, policy)
    return _compensate(state, TIMEOUT_CODE, _done_so_far(state, including_current=True), now, policy)


def transition(state: SagaState, event: Event, now: datetime, policy: Policy) -> Decision:
    """Apply one reply or timeout; anything unexpected leaves the state as it was."""
    if state.step in TERMINAL:
        return Decision(state)
    if isinstance(event, Timeout):
        return _on_timeout(state, now, policy)
    if state.step in FORWARD:
        return _on_forward_reply(state, event, now, policy)
    if state.step is Step.COMPENSATING:
        return _on_ack(state, event)
    if isinstance(event, ev.CouponConfirmed):  # CONFIRMING_COUPON
        return Decision(_idle(state, step=Step.DONE), [])
    return Decision(state)
