"""The saga step a consumed batch at a time: message order, duplicates, fences, races, round trips."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from balance_service.db.unit_of_work import PostgresUnitsOfWork
from balance_service.db.unit_of_work import TransactionalUnitOfWork as UnitOfWork
from balance_service.domain.commands import Refund
from balance_service.domain.payments import Deducted, DeductRefused, Refunded, SagaOutcome
from balance_service.messaging import saga
from balance_service.service import payments
from shared.db.pool import create_pool
from shared.events.saga import (
    BalanceDeducted,
    BalanceDeductionFailed,
    BalanceRefunded,
    DeductBalance,
    RefundBalance,
    SagaCommand,
)
from shared.messaging import topics
from shared.messaging.envelope import Incoming, Outgoing

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

Handler = Callable[[list[Incoming]], Awaitable[None]]


def _order() -> str:
    return str(uuid.uuid4())


def _incoming(h, messages: list[SagaCommand]) -> list[Incoming]:  # type: ignore[no-untyped-def]
    """The batch the consumer hands over for these messages (decoded, keyed by order id)."""
    topic = h.topic(topics.BALANCE_COMMANDS)
    return [Incoming(topic, 0, i, m.order_id, m, "req-batch") for i, m in enumerate(messages)]


def _spying(pool: asyncpg.Pool, h, seen: list[SagaOutcome]) -> Handler:  # type: ignore[no-untyped-def]
    """The consumer's handler, also recording every outcome it replies with."""
    replies_topic = h.topic(topics.SAGA_REPLIES)

    def reply_of(item: Incoming, outcome: SagaOutcome) -> Outgoing:
        seen.append(outcome)
        answer = saga.reply(item.message, outcome)
        return Outgoing(replies_topic, answer.order_id, answer, item.request_id)

    async def on_batch(batch: list[Incoming]) -> None:
        await saga.apply_commands(PostgresUnitsOfWork(pool), batch, reply_of)

    return on_batch


async def _state(pool: asyncpg.Pool, users: list[int]) -> tuple[list, list, list]:  # type: ignore[type-arg]
    async with pool.acquire() as conn:
        return (
            await conn.fetch("SELECT user_id, balance FROM balances WHERE user_id = ANY($1) ORDER BY user_id", users),
            await conn.fetch("SELECT * FROM balance_history WHERE user_id = ANY($1) ORDER BY id", users),
            await conn.fetch("SELECT * FROM order_payments WHERE user_id = ANY($1) ORDER BY order_id", users),
        )


async def test_one_batch_applies_in_message_order(h, pool) -> None:
    a = await h.new_user(balance=5000)
    b = await h.new_user(balance=100)
    o = [_order() for _ in range(10)]
    dup = DeductBalance(order_id=o[6], user_id=b, amount=30)
    messages: list[SagaCommand] = [
        DeductBalance(order_id=o[0], user_id=a, amount=2000),  # 3000
        DeductBalance(order_id=o[4], user_id=b, amount=60),  # b 40
        DeductBalance(order_id=o[1], user_id=a, amount=2000),  # 1000
        RefundBalance(order_id=o[4]),  # b 100
        DeductBalance(order_id=o[2], user_id=a, amount=2000),  # refused
        RefundBalance(order_id=o[5]),  # fence
        DeductBalance(order_id=o[3], user_id=a, amount=1500),  # refused
        DeductBalance(order_id=o[5], user_id=b, amount=10),  # ALREADY_COMPENSATED
        dup,
        dup,  # b 70, once
        DeductBalance(order_id=o[6], user_id=b, amount=30),  # re-sent: the same answer
        DeductBalance(order_id=o[7], user_id=9_000_000_010, amount=5),
        DeductBalance(order_id=o[8], user_id=b, amount=0),  # accepted, no history row
        RefundBalance(order_id=o[2]),  # refused order: gives back 0
    ]
    await saga.saga_batch_handler(PostgresUnitsOfWork(pool), h.topic(topics.SAGA_REPLIES))(_incoming(h, messages))

    expected = len(messages) - 1
    replies = await h.replies(set(o), until=lambda rs: len(rs) >= expected)
    assert len(replies) == expected
    by_command = {r.command_id: r for r in replies}
    got = [by_command[m.event_id] for m in messages]
    assert [(r.amount, r.balance_after) for r in (got[0], got[2])] == [(2000, 3000), (2000, 1000)]
    assert isinstance(got[4], BalanceDeductionFailed) and got[4].code == "INSUFFICIENT_BALANCE"
    assert isinstance(got[6], BalanceDeductionFailed) and got[6].code == "INSUFFICIENT_BALANCE"
    assert "balance 1000 is less than the amount due 1500" in got[6].reason
    assert isinstance(got[1], BalanceDeducted) and got[1].balance_after == 40
    assert isinstance(got[3], BalanceRefunded) and got[3].amount == 60
    assert isinstance(got[5], BalanceRefunded) and got[5].amount == 0
    assert isinstance(got[7], BalanceDeductionFailed) and got[7].code == "ALREADY_COMPENSATED"
    assert isinstance(got[8], BalanceDeducted) and (got[8].amount, got[8].balance_after) == (30, 70)
    assert isinstance(got[10], BalanceDeducted) and (got[10].amount, got[10].balance_after) == (30, 70)
    assert isinstance(got[11], BalanceDeductionFailed) and got[11].code == "USER_NOT_FOUND"
    assert isinstance(got[12], BalanceDeducted) and (got[12].amount, got[12].balance_after) == (0, 70)
    assert isinstance(got[13], BalanceRefunded) and got[13].amount == 0
    assert all(r.order_id == m.order_id for r, m in zip(got, messages, strict=True))

    assert await h.balance(a) == 1000 and await h.balance(b) == 70
    hist_a = [(i["type"], i["amount"], i["balance_after"], i["order_id"]) for i in (await h.history(a))["items"]]
    assert hist_a == [("USE", 2000, 1000, o[1]), ("USE", 2000, 3000, o[0]), ("CHARGE", 5000, 5000, None)]
    hist_b = [(i["type"], i["amount"], i["balance_after"], i["order_id"]) for i in (await h.history(b))["items"]]
    assert hist_b == [
        ("USE", 30, 70, o[6]),
        ("REFUND", 60, 100, o[4]),
        ("USE", 60, 40, o[4]),
        ("CHARGE", 100, 100, None),
    ]
    async with pool.acquire() as conn:
        records = {
            r["order_id"]: (r["status"], r["failure_code"])
            for r in await conn.fetch(
                "SELECT order_id, status, failure_code FROM order_payments WHERE order_id = ANY($1)", o
            )
        }
    assert records == {
        o[0]: ("DEDUCTED", None),
        o[1]: ("DEDUCTED", None),
        o[2]: ("REFUSED", "INSUFFICIENT_BALANCE"),
        o[3]: ("REFUSED", "INSUFFICIENT_BALANCE"),
        o[4]: ("REFUNDED", None),
        o[5]: ("REFUNDED", None),
        o[6]: ("DEDUCTED", None),
        o[7]: ("REFUSED", "USER_NOT_FOUND"),
        o[8]: ("DEDUCTED", None),
    }

    # The same batch delivered again: nothing changes and nothing is answered again.
    before = await _state(pool, [a, b])
    seen: list[SagaOutcome] = []
    await _spying(pool, h, seen)(_incoming(h, messages))
    assert seen == [] and await _state(pool, [a, b]) == before


async def test_batch_of_deducts_that_partly_fit_takes_the_first_ones(h, pool) -> None:
    user = await h.new_user(balance=10_000)
    messages: list[SagaCommand] = [DeductBalance(order_id=_order(), user_id=user, amount=1500) for _ in range(12)]
    seen: list[SagaOutcome] = []
    await _spying(pool, h, seen)(_incoming(h, messages))
    assert [getattr(s, "balance_after", None) for s in seen] == [8500, 7000, 5500, 4000, 2500, 1000] + [None] * 6
    assert {getattr(s, "code", None) for s in seen[6:]} == {"INSUFFICIENT_BALANCE"}
    assert await h.balance(user) == 1000
    uses = [(i["order_id"], i["balance_after"]) for i in reversed((await h.history(user, limit=100))["items"])][1:]
    assert uses == [(m.order_id, 10_000 - 1500 * (k + 1)) for k, m in enumerate(messages[:6])]


async def test_round_trips_per_batch_do_not_grow_with_its_size(h, settings) -> None:
    users = [await h.new_user(balance=1_000_000) for _ in range(5)]
    one = await create_pool(settings.database_url, min_size=1, max_size=1)  # as the service opens it
    try:
        async with one.acquire() as conn:
            protocol = conn._con._protocol  # type: ignore[attr-defined]
        handler = _spying(one, h, [])

        def batch(size: int) -> list[SagaCommand]:
            deducts = [DeductBalance(order_id=_order(), user_id=random.choice(users), amount=100) for _ in range(size)]
            return (
                deducts
                + [RefundBalance(order_id=d.order_id) for d in deducts[: size // 2]]
                + [RefundBalance(order_id=_order())]
            )

        await handler(_incoming(h, batch(2)))  # prepares the statements once
        counts = {}
        for size in (1, 5, 40):
            start = protocol.queries_count
            await handler(_incoming(h, batch(size)))
            counts[size] = protocol.queries_count - start
        # BEGIN, inbox claim + lock and read, one write (records, balances, history, outbox), COMMIT
        assert counts == {1: 4, 5: 4, 40: 4}
    finally:
        await one.close()


async def test_two_instances_racing_with_charges_stay_exact(h, pool, settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="balance_service.service.payments")
    rng = random.Random(7)
    start = 20_000
    users = [await h.new_user(balance=start) for _ in range(4)]
    other = await create_pool(settings.database_url, min_size=1, max_size=4)
    seen: list[SagaOutcome] = []
    instances = [_spying(pool, h, seen), _spying(other, h, seen)]

    # Each instance owns its orders (Kafka partitions by order id); some commands also reach the
    # other instance (a re-sent Deduct, a Refund after a rebalance), racing on the same records.
    sent: list[list[list[SagaCommand]]] = [[], []]
    deducts: list[DeductBalance] = []
    for n in range(2):
        for _ in range(8):
            batch: list[SagaCommand] = []
            for _ in range(10):
                if deducts and rng.random() < 0.25:
                    batch.append(RefundBalance(order_id=rng.choice(deducts).order_id))
                else:
                    d = DeductBalance(
                        order_id=_order(), user_id=rng.choice(users), amount=rng.choice([500, 1500, 3000])
                    )
                    deducts.append(d)
                    batch.append(d)
                if rng.random() < 0.1:
                    d = rng.choice(deducts)
                    sent[1 - n].append([DeductBalance(order_id=d.order_id, user_id=d.user_id, amount=d.amount)])
            sent[n].append(batch)

    async def consume(n: int) -> None:
        for batch in sent[n]:
            await instances[n](_incoming(h, batch))

    try:
        charges = [h.charge(rng.choice(users), 1000) for _ in range(40)]
        keyed = [h.charge(u, 700, headers={"Idempotency-Key": f"k-{u}"}) for u in users for _ in range(2)]
        results = await asyncio.gather(consume(0), consume(1), *charges, *keyed)
    finally:
        await other.close()
    assert all(r.status == 200 for r in results[2:])
    assert not [r for r in caplog.records if "conflicted" in r.getMessage()]  # no deadlock

    commands = [m for n in range(2) for batch in sent[n] for m in batch]
    orders = {m.order_id for m in commands}
    replies = await h.replies(orders, until=lambda rs: len(rs) >= len(commands), timeout=60)
    assert len(replies) == len(commands)
    assert {r.command_id for r in replies} == {m.event_id for m in commands}
    answers: dict[str, set] = defaultdict(set)  # type: ignore[type-arg]
    for r in replies:  # every Deduct of an order got the same answer (until it was refunded)
        if not isinstance(r, BalanceRefunded) and getattr(r, "code", None) != "ALREADY_COMPENSATED":
            answers[r.order_id].add((type(r).__name__, getattr(r, "balance_after", None), getattr(r, "code", None)))
    assert all(len(a) == 1 for a in answers.values())
    refunded = defaultdict(int)
    for r in replies:
        if isinstance(r, BalanceRefunded):
            refunded[r.order_id] = max(refunded[r.order_id], r.amount)

    balances, history, records = await _state(pool, users)
    charged = defaultdict(int)
    for r in history:
        if r["type"] == "CHARGE":
            charged[r["user_id"]] += r["amount"]
    by_user = defaultdict(list)
    for r in history:
        by_user[r["user_id"]].append(r)
    for row in balances:
        u, final = row["user_id"], row["balance"]
        taken = sum(p["amount"] for p in records if p["user_id"] == u and p["status"] == "DEDUCTED")
        assert final >= 0
        assert final == charged[u] - taken
        running = 0
        for r in by_user[u]:  # every row follows from the one before it
            running += -r["amount"] if r["type"] == "USE" else r["amount"]
            assert r["balance_after"] == running >= 0
        assert running == final
        uses = sorted(r["order_id"] for r in by_user[u] if r["type"] == "USE")
        refunds = sorted(r["order_id"] for r in by_user[u] if r["type"] == "REFUND")
        assert uses == sorted(p["order_id"] for p in records if p["user_id"] == u and p["status"] != "REFUSED")
        assert refunds == sorted(p["order_id"] for p in records if p["user_id"] == u and p["status"] == "REFUNDED")
        assert all(
            refunded[p["order_id"]] == p["amount"] for p in records if p["user_id"] == u and p["status"] == "REFUNDED"
        )
    assert sum(charged.values()) == len(users) * start + 40 * 1000 + len(users) * 700


async def test_record_written_meanwhile_by_another_instance_is_answered_from(h, pool, settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="balance_service.service.payments")
    user = await h.new_user(balance=5000)
    raced, other_order = _order(), _order()
    other = await create_pool(settings.database_url, min_size=1, max_size=1)
    seen: list[SagaOutcome] = []
    try:
        async with UnitOfWork(other) as uow:  # another instance's Refund of the order, not yet committed
            assert await payments.refund(uow, Refund(raced)) == Refunded(0)
            batch = _incoming(
                h,
                [
                    DeductBalance(order_id=other_order, user_id=user, amount=1000),
                    DeductBalance(order_id=raced, user_id=user, amount=2000),
                ],
            )
            task = asyncio.create_task(_spying(pool, h, seen)(batch))
            async with asyncio.timeout(20):  # our batch waits on the order's key
                while not await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                ):
                    await asyncio.sleep(0.01)
            await uow.commit()
        async with asyncio.timeout(20):
            await task
    finally:
        await other.close()
    assert any("recorded concurrently" in r.getMessage() for r in caplog.records)
    assert seen[-2:] == [
        Deducted(1000, 4000),
        DeductRefused("ALREADY_COMPENSATED", f"order {raced} was already refunded"),
    ]
    assert await h.balance(user) == 4000
    assert [i["type"] for i in (await h.history(user))["items"]] == ["USE", "CHARGE"]
