"""Driving the saga: apply a batch of replies, or the timeouts of overdue sagas, in one transaction.

Every state change, the order's final status (with its ``pg_notify``) and the commands and public
events it emits commit together, so a crash anywhere leaves either all of it or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from order_service.db import repository as repo
from order_service.domain import history, saga
from order_service.domain.order import kept_amounts
from order_service.service.flow_metrics import FlowMetrics
from shared.db.outbox import Sent, SentHook
from shared.db.uow import UnitOfWork
from shared.events import orders as public
from shared.events.saga import SagaReply
from shared.messaging import topics
from shared.messaging.envelope import Incoming, Outgoing, utcnow
from shared.messaging.topics import Topics

CONSUMER = "order-saga"


@dataclass(frozen=True)
class SagaContext:
    """What the runner needs besides the database."""

    pool: asyncpg.Pool
    topics: Topics
    policy: saga.Policy
    metrics: FlowMetrics | None = None


async def _write(
    uow: UnitOfWork, ctx: SagaContext, run: _Run, now: datetime, lines: dict[str, list] | None = None
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
        lines.update(await repo.order_lines(uow.conn, missing))
    messages: list[Outgoing] = []
    for d in decisions:
        state = d.state
        for topic, command in d.commands:
            messages.append(Outgoing(ctx.topics(topic), state.order_id, command, state.request_id, state.traceparent))
        if d.outcome is not None:
            topic, event = _public_event(state, d.outcome, lines.get(state.order_id, []), now)
            messages.append(Outgoing(ctx.topics(topic), state.order_id, event, state.request_id, state.traceparent))
    await repo.write_decisions(uow.conn, [d.state for d in decisions], finished, now, messages, run.history)


def _kept(state: saga.SagaState, status: str) -> saga.SagaState:
    """The state with the amounts its order stores: 0 for a failed order (nothing kept)."""
    discount, paid = kept_amounts(status, state.discount_amount, state.paid_amount)
    return replace(state, discount_amount=discount, paid_amount=paid)


def _public_event(state: saga.SagaState, outcome: saga.Outcome, lines: list, now: datetime):
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

    def record(self, ctx: SagaContext, times: dict[str, tuple[datetime, datetime]], now: datetime) -> None:
        """The flow metrics of a committed batch (nothing read for them: ``times`` came with the lock)."""
        if ctx.metrics is not None:
            outcomes = [
                (d.state.order_id, d.outcome.status, d.outcome.failure_code)
                for d in self.decisions
                if d.outcome is not None
            ]
            ctx.metrics.record(self.steps, outcomes, times, now)


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


async def apply_replies(ctx: SagaContext, batch: Sequence[Incoming]) -> None:
    """Apply a consumed batch of replies exactly once (inbox) in one transaction: BEGIN, the inbox
    claim with the lock of the sagas, one write, COMMIT."""
    async with UnitOfWork(ctx.pool) as uow:
        order_ids = sorted({item.message.order_id for item in batch if isinstance(item.message, SagaReply)})
        times: dict[str, tuple[datetime, datetime]] = {}
        new, states, lines = await repo.claim_and_lock(
            uow.conn, CONSUMER, [item.event_id for item in batch], order_ids, str(saga.Step.DEDUCTING_STOCK), times
        )
        replies = []
        for item in batch:
            if item.event_id in new and isinstance(item.message, SagaReply):
                new.discard(item.event_id)
                replies.append((item.message.order_id, item.message))
        run = None
        if replies:
            now = utcnow()
            run = _run(states, replies, now, ctx.policy)
            await _write(uow, ctx, run, now, lines)
        await uow.commit()
    if run is not None:
        run.record(ctx, times, now)


async def sweep(ctx: SagaContext, limit: int = 200) -> int:
    """Feed a timeout to each overdue saga nobody else holds; return how many were handled.

    Overdue on the database's clock (the one the relay's hook armed the deadlines with)."""
    async with UnitOfWork(ctx.pool) as uow:
        times: dict[str, tuple[datetime, datetime]] = {}
        now, due = await repo.lock_due_sagas(uow.conn, limit, times)
        if not due or now is None:
            return 0
        states = {s.order_id: s for s in due}
        run = _run(states, [(s.order_id, saga.Timeout()) for s in due], now, ctx.policy)
        await _write(uow, ctx, run, now)
        await uow.commit()
    run.record(ctx, times, now)
    return len(due)


COMMAND_TOPICS = (topics.COUPON_COMMANDS, topics.BALANCE_COMMANDS, topics.STOCK_COMMANDS)


def arm_on_send(names: Topics, command_topics: Iterable[str] = COMMAND_TOPICS) -> SentHook:
    """The outbox relay's hook: the saga commands of an acknowledged batch start their sagas' deadlines
    (one statement per batch that holds any, in the relay's transaction; none for other batches)."""
    wanted = frozenset(names(t) for t in command_topics)

    async def on_sent(conn: asyncpg.Connection, sent: Sequence[Sent]) -> None:
        commands = [s for s in sent if s.topic in wanted]
        if commands:
            await repo.arm_sent(conn, [s.key for s in commands], [s.event_id for s in commands])

    return on_sent
