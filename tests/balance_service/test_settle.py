"""Unit tests of ``settle``: a batch of saga commands folded over locked records and balances (no IO)."""

from __future__ import annotations

import random

import pytest

from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.model import EntryType
from balance_service.domain.payments import (
    Deducted,
    DeductRefused,
    HistoryEntry,
    Payment,
    PaymentStatus,
    Refunded,
    SagaCommand,
    settle,
)


def test_deducts_of_one_user_apply_in_message_order() -> None:
    s = settle([Deduct("a", 1, 2000), Deduct("b", 1, 2000), Deduct("c", 1, 2000), Deduct("d", 1, 1000)], {}, {1: 5000})
    assert s.outcomes[:2] == [Deducted(2000, 3000), Deducted(2000, 1000)]
    assert s.outcomes[2] == DeductRefused("INSUFFICIENT_BALANCE", "balance 1000 is less than the amount due 2000")
    assert s.outcomes[3] == Deducted(1000, 0)
    assert s.balances == {1: 0}
    assert s.history == [
        HistoryEntry(1, EntryType.USE, 2000, 3000, "a"),
        HistoryEntry(1, EntryType.USE, 2000, 1000, "b"),
        HistoryEntry(1, EntryType.USE, 1000, 0, "d"),
    ]
    assert [(p.order_id, p.status) for p in s.created] == [
        ("a", PaymentStatus.DEDUCTED),
        ("b", PaymentStatus.DEDUCTED),
        ("c", PaymentStatus.REFUSED),
        ("d", PaymentStatus.DEDUCTED),
    ]
    assert s.created[2].failure_code == "INSUFFICIENT_BALANCE" and s.updated == []


def test_deduct_then_its_refund_in_one_batch() -> None:
    s = settle([Deduct("a", 1, 700), Refund("a"), Refund("a"), Deduct("a", 1, 700)], {}, {1: 1000})
    assert s.outcomes == [
        Deducted(700, 300),
        Refunded(700),
        Refunded(700),
        DeductRefused("ALREADY_COMPENSATED", "order a was already refunded"),
    ]
    assert s.balances == {1: 1000}
    assert s.created == [Payment("a", 1, 700, PaymentStatus.REFUNDED, 300)]
    assert [(h.type, h.amount, h.balance_after) for h in s.history] == [
        (EntryType.USE, 700, 300),
        (EntryType.REFUND, 700, 1000),
    ]


def test_refund_before_its_deduct_fences() -> None:
    s = settle([Refund("a"), Deduct("a", 1, 700)], {}, {1: 1000})
    assert s.outcomes == [Refunded(0), DeductRefused("ALREADY_COMPENSATED", "order a was already refunded")]
    assert s.created == [Payment("a", None, 0, PaymentStatus.REFUNDED)]
    assert s.balances == {} and s.history == []


def test_repeated_deduct_answers_the_same_and_takes_once() -> None:
    s = settle([Deduct("a", 1, 400), Deduct("a", 1, 400), Deduct("p", 1, 900), Deduct("p", 1, 900)], {}, {1: 1000})
    assert s.outcomes[0] == s.outcomes[1] == Deducted(400, 600)
    assert s.outcomes[2] == s.outcomes[3] and s.outcomes[2].code == "INSUFFICIENT_BALANCE"  # type: ignore[union-attr]
    assert s.balances == {1: 600} and len(s.history) == 1


def test_unknown_user_and_amount_zero() -> None:
    s = settle([Deduct("a", 9, 10), Deduct("z", 1, 0), Refund("z"), Refund("a")], {}, {1: 50})
    assert s.outcomes == [
        DeductRefused("USER_NOT_FOUND", "user 9 does not exist"),
        Deducted(0, 50),
        Refunded(0),
        Refunded(0),
    ]
    assert s.history == [] and s.balances == {1: 50}
    assert [(p.order_id, p.status, p.failure_code) for p in s.created] == [
        ("a", PaymentStatus.REFUSED, "USER_NOT_FOUND"),
        ("z", PaymentStatus.REFUNDED, None),
    ]


def test_existing_records_replay_or_change() -> None:
    records = {
        "d": Payment("d", 1, 300, PaymentStatus.DEDUCTED, 700),
        "r": Payment("r", 1, 300, PaymentStatus.REFUNDED, 700),
        "x": Payment("x", 2, 50, PaymentStatus.REFUSED, None, "INSUFFICIENT_BALANCE", "low"),
    }
    s = settle(
        [Deduct("d", 1, 300), Deduct("x", 2, 50), Refund("r"), Refund("x"), Refund("d"), Refund("d")],
        records,
        {1: 100, 2: 5},
    )
    assert s.outcomes == [
        Deducted(300, 700),
        DeductRefused("INSUFFICIENT_BALANCE", "low"),
        Refunded(300),
        Refunded(0),
        Refunded(300),
        Refunded(300),
    ]
    assert s.created == [] and s.updated == [Payment("d", 1, 300, PaymentStatus.REFUNDED, 700)]
    assert s.balances == {1: 400} and s.history == [HistoryEntry(1, EntryType.REFUND, 300, 400, "d")]
    assert settle([Deduct("d", 1, 300), Refund("r")], records, {1: 100}).writes_nothing


def _one_by_one(commands: list[SagaCommand], records: dict[str, Payment], balances: dict[int, int]):  # type: ignore[no-untyped-def]
    """Each command settled alone on what the previous ones wrote: the reference semantics."""
    records, balances = dict(records), dict(balances)
    outcomes, history = [], []
    for cmd in commands:
        s = settle([cmd], records, balances)
        outcomes += s.outcomes
        history += s.history
        records.update({p.order_id: p for p in s.created + s.updated})
        balances.update(s.balances)
    return outcomes, records, balances, history


@pytest.mark.parametrize("seed", range(200))
def test_a_batch_settles_as_its_commands_one_after_the_other(seed: int) -> None:
    rng = random.Random(seed)
    orders = [f"o{i}" for i in range(8)]
    users = [1, 2, 3, 4]  # 4 does not exist
    balances = {1: rng.randrange(0, 3000), 2: rng.randrange(0, 3000), 3: 0}
    records = {"o0": Payment("o0", 1, 100, PaymentStatus.DEDUCTED, 900)} if seed % 2 else {}
    commands: list[SagaCommand] = [
        Deduct(rng.choice(orders), rng.choice(users), rng.choice([0, 100, 700, 1500]))
        if rng.random() < 0.7
        else Refund(rng.choice(orders))
        for _ in range(rng.randrange(1, 20))
    ]
    batch = settle(commands, records, balances)
    outcomes, final_records, final_balances, history = _one_by_one(commands, records, balances)
    assert batch.outcomes == outcomes
    assert batch.history == history
    assert {**balances, **batch.balances} == final_balances
    assert all(v >= 0 for v in final_balances.values())
    written = {p.order_id: p for p in batch.created + batch.updated}
    assert {**records, **written} == final_records
    assert not {p.order_id for p in batch.created} & set(records)
    assert [p.order_id for p in batch.created] == sorted(p.order_id for p in batch.created)


def test_a_deduction_holds_its_amount_until_refunded() -> None:
    """Money taken by an order in flight is held (it counts toward the limit); a refund releases
    exactly what the record held (0 for a deduction recorded before holding existed)."""
    s = settle([Deduct("a", 1, 700), Deduct("b", 1, 200), Deduct("c", 2, 5)], {}, {1: 1000, 2: 5})
    assert s.held == {1: 900, 2: 5}
    assert [(p.order_id, p.held) for p in s.created] == [("a", 700), ("b", 200), ("c", 5)]
    records = {p.order_id: p for p in s.created}
    legacy = Payment("old", 1, 50, PaymentStatus.DEDUCTED, 950)  # held 0: from before the rule
    s = settle([Refund("a"), Refund("old")], {"a": records["a"], "old": legacy}, {1: 100})
    assert s.held == {1: -700} and s.balances == {1: 850}
    assert [(p.order_id, p.status, p.held) for p in s.updated] == [
        ("a", PaymentStatus.REFUNDED, 0),
        ("old", PaymentStatus.REFUNDED, 0),
    ]
