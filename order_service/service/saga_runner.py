"""Driving the saga: apply a batch of replies, or the timeouts of overdue sagas, in one transaction.

Every state change, the order's final status (with its ``pg_notify``) and the commands and public
events it emits commit together, so a crash anywhere leaves either all of it or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from order_service.domain import history, saga
from order_service.domain.model import OrderLine, kept_amounts
from order_service.domain.saga import Participant
from order_service.service.deps import Deps
from order_service.service.ports import Times, UnitOfWork
from shared.events import orders as public
from shared.events.saga import SagaReply
from shared.messaging import topics
from shared.messaging.envelope import Message, Outgoing

CONSUMER = "order-saga"
COMMAND_TOPIC = {
    Participant.COUPON: topics.COUPON_COMMANDS,
    Participant.BALANCE: topics.BALANCE_COMMANDS,
    Participant.STOCK: topics.STOCK_COMMANDS,
}
"""The topic of each participant's commands."""
Reply = tuple[object, SagaReply | None]
"""A consumed message: its id (the inbox's key) and the reply (``None``: not a reply, claimed and
ignored)."""


async def _write(
    uow: UnitOfWork, deps: Deps, run: _Run, now: datetime, lines: dict[str, list[OrderLine]] | None = None
) -> None:
    """Persist changed sagas, finish decided orders, queue every command and public event, add the
    history: one statement (``lines``: order lines already read, by order id; the others are read
    here)."""
    decisions = run.decisions
    if not decisions and not run.history:
        return
    finished = [
        (_kept(d.state, d.outcome.status), d.outcome.status, d.outcome.failure_code) for d in decisions if d.outcome
    ]
    completed = [d.state.order_id for d in decisions if d.outcome and d.outcome.status == "COMPLETED"]
    lines = dict(lines or {})
    missing = [order_id for order_id in completed if order_id not in lines]
    if missing:
        lines.update(await uow.orders.lines(missing))
    messages: list[Outgoing] = []
    for d in decisions:
        state = d.state
        for who, command in d.commands:
            messages.append(
                Outgoing(deps.topics(COMMAND_TOPIC[who]), state.order_id, command, state.request_id, state.traceparent)
            )
        if d.outcome is not None:
            topic, event = _public_event(state, d.outcome, lines.get(state.order_id, []), now)
            messages.append(Outgoing(deps.topics(topic), state.order_id, event, state.request_id, state.traceparent))
    await uow.sagas.write([d.state for d in decisions], finished, now, messages, run.history)


def _kept(state: saga.SagaState, status: str) -> saga.SagaState:
    """The state with the amounts its order stores: 0 for a failed order (nothing kept)."""
    discount, paid = kept_amounts(status, state.discount_amount, state.paid_amount)
    return replace(state, discount_amount=discount, paid_amount=paid)


def _public_event(
    state: saga.SagaState, outcome: saga.Outcome, lines: list[OrderLine], now: datetime
) -> tuple[str, Message]:
    if outcome.status == "COMPLETED":
        items = [
            public.OrderCompletedItem(
                product_id=line.product_id, name=line.name, unit_price=line.unit_price, quantity=line.quantity
            )
            for line in lines
        ]
        return topics.ORDER_COMPLETED, public.OrderCompleted(
            order_id=state.order_id,
            user_id=state.user_id,
            items=items,
            total_amount=state.total_amount,
            discount_amount=state.discount_amount,
            paid_amount=state.paid_amount,
            user_coupon_id=state.user_coupon_id,
            completed_at=now,
        )
    return topics.ORDER_FAILED, public.OrderFailed(
        order_id=state.order_id, user_id=state.user_id, failure_code=outcome.failure_code or "", failed_at=now
    )


@dataclass(frozen=True)
class _Run:
    """What folding a batch of events decided: one decision per saga that changed, and the
    history of every event applied (a reply that changed nothing included)."""

    decisions: list[saga.Decision]
    history: list[history.Entry]
    steps: list[tuple[str, str, str]]  # (order id, step, ok|failed|timeout) of events that moved a saga

    def record(self, deps: Deps, times: Times, now: datetime) -> None:
        """The flow metrics of a committed batch (nothing read for them: ``times`` came with the lock)."""
        if deps.metrics is not None:
            outcomes = [
                (d.state.order_id, d.outcome.status, d.outcome.failure_code)
                for d in self.decisions
                if d.outcome is not None
            ]
            deps.metrics.record(self.steps, outcomes, times, now)


def _run(
    states: dict[str, saga.SagaState], events: Sequence[tuple[str, saga.Event]], now: datetime, policy: saga.Policy
) -> _Run:
    """Fold every event into its saga; one decision per saga that changed, commands concatenated."""
    decisions: dict[str, saga.Decision] = {}
    entries: list[history.Entry] = []
    steps: list[tuple[str, str, str]] = []
    for order_id, event in events:
        state = states.get(order_id)
        if state is None:
            continue
        decision = saga.transition(state, event, now, policy)
        entries.extend(history.applied(state, event, decision))
        if decision.state == state and not decision.commands:
            continue
        if isinstance(event, saga.Timeout):
            steps.append((order_id, str(state.step), "timeout"))
        elif order_id not in decisions:  # the first reply of the batch is timed from the last send
            steps.append((order_id, str(state.step), "failed" if getattr(event, "code", None) else "ok"))
        states[order_id] = decision.state
        before = decisions.get(order_id)
        if before is not None:
            decision = saga.Decision(
                decision.state, before.commands + decision.commands, decision.outcome or before.outcome
            )
        decisions[order_id] = decision
    return _Run(list(decisions.values()), entries, steps)


@dataclass(frozen=True)
class Applied:
    """What a committed batch did, for the flow metrics (recorded after the commit)."""

    run: _Run
    times: Times
    now: datetime

    def record(self, deps: Deps) -> None:
        self.run.record(deps, self.times, self.now)


async def apply_replies(deps: Deps, uow: UnitOfWork, batch: Sequence[Reply]) -> Applied | None:
    """Apply a consumed batch of replies exactly once inside ``uow``, the consumer pipeline's
    transaction (its caller commits): the inbox claim with the lock of the sagas, one write.
    ``None`` when no reply was new."""
    order_ids = sorted({reply.order_id for _, reply in batch if reply is not None})
    times: Times = {}
    new, states, lines = await uow.sagas.claim_and_lock(
        CONSUMER, [event_id for event_id, _ in batch], order_ids, str(saga.Step.DEDUCTING_STOCK), times
    )
    replies: list[tuple[str, saga.Event]] = []
    for event_id, reply in batch:
        if event_id in new and reply is not None:
            new.discard(event_id)
            replies.append((reply.order_id, reply))
    if not replies:
        return None
    now = deps.clock()
    run = _run(states, replies, now, deps.policy)
    await _write(uow, deps, run, now, lines)
    return Applied(run, times, now)


async def sweep(deps: Deps, limit: int = 200) -> int:
    """Feed a timeout to each overdue saga nobody else holds; return how many were handled.

    Overdue on the database's clock (the one the relay's hook armed the deadlines with)."""
    async with deps.uow() as uow:
        times: Times = {}
        now, due = await uow.sagas.lock_due(limit, times)
        if not due or now is None:
            return 0
        states = {s.order_id: s for s in due}
        run = _run(states, [(s.order_id, saga.Timeout()) for s in due], now, deps.policy)
        await _write(uow, deps, run, now)
        await uow.commit()
    run.record(deps, times, now)
    return len(due)
