"""THE consumer pipeline: a consumed batch applied exactly once, in one transaction.

:class:`shared.messaging.consumer.BatchConsumer` fetches and decodes a batch, calls its handler,
and commits the offsets only after the handler returns (after the database committed); when the
handler raises, :mod:`shared.messaging.recovery` retries transient failures and sets deterministic
ones aside as dead letters. The handler is built here, from a :class:`Pipeline`::

    pipeline = Pipeline(deps.uow, "coupon-users")
    handler = pipeline.each(apply_one)            # apply_one(uow, item), per new message

Every transaction: open a unit of work, claim the batch in the inbox, apply, commit. One
transaction for the whole batch (one inbox round trip, one commit). Two ways to apply:

- :meth:`Pipeline.each` / :meth:`Pipeline.apply_each`: ``apply_one(uow, item)`` for every message
  new to the inbox, in order (a duplicate inside the batch applies once), each under the
  message's request id (:func:`message_context`).
- :meth:`Pipeline.whole` / :meth:`Pipeline.apply_batch`: ``apply(uow, items)`` once for the batch
  (a fold: a few statements whatever the batch size). With ``claim=True`` the pipeline claims the
  inbox first and ``items`` are the new messages only; with ``claim=False`` ``apply`` gets the
  whole batch and claims the inbox itself, inside a statement it runs anyway (balance's
  claim-and-lock, ranking's counted orders: no extra round trip), keeping the new ones with
  :func:`fresh`. ``apply`` returns a value per committed transaction (the replies sent, a count),
  so that what must happen only after the commit (clearing a cache, metrics) happens in the caller.

When the transaction fails on a conflict (a deadlock or a serialization failure), the pipeline
either splits (``on_conflict="split"``, the default: each message alone, in order, in its own
transaction, each retried up to ``attempts`` times) or retries the whole batch
(``on_conflict="retry"``, up to ``attempts`` transactions). ``retry_if`` names another exception
on which a transaction runs again from the start (a unique violation on a key another instance
inserted after we read: the fresh read sees it), up to ``retry_attempts`` times.

The unit of work is anything with ``async with``, ``commit()`` and an ``inbox`` with
``claim_new(consumer, ids)`` (:class:`Transaction`): :class:`shared.db.uow.UnitOfWork` (or a
service's subclass carrying repositories) in production, an in-memory fake in handler tests.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Generic, Literal, Protocol, Self, TypeVar

from shared.context import request_id_var
from shared.db.errors import is_conflict
from shared.db.inbox import Inbox
from shared.messaging.envelope import Incoming

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Incoming]], Awaitable[None]]
"""What :class:`shared.messaging.consumer.BatchConsumer` runs on each decoded batch."""


class Transaction(Protocol):
    """A unit of work as the pipeline uses it: one transaction, rolled back unless committed."""

    @property
    def inbox(self) -> Inbox: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


U = TypeVar("U", bound=Transaction)
T = TypeVar("T")

ApplyOne = Callable[[U, Incoming], Awaitable[None]]
"""Applies one new message inside the batch's transaction."""
ApplyBatch = Callable[[U, list[Incoming]], Awaitable[T]]
"""Applies a batch at once inside its transaction; returns what the caller needs after the commit."""
Predicate = Callable[[BaseException], bool]


@contextlib.contextmanager
def message_context(item: Incoming) -> Iterator[None]:
    """Run with the request id of the message, so logs and replies carry it on."""
    token = request_id_var.set(item.request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def fresh(batch: Iterable[Incoming], new: Iterable[uuid.UUID]) -> list[Incoming]:
    """The messages of ``batch`` whose ids the inbox claim returned as ``new``, in order, each once
    (a duplicate inside the batch applies once)."""
    todo = set(new)
    out = []
    for item in batch:
        if item.event_id in todo:
            todo.discard(item.event_id)
            out.append(item)
    return out


async def split_on_conflict(
    batch: Sequence[Incoming],
    apply: Callable[[Sequence[Incoming]], Awaitable[object]],
    attempts: int = 5,
    conflict: Predicate = is_conflict,
) -> None:
    """``await apply(batch)`` (one transaction); when that fails on a conflict, apply each message
    alone, in order, each retried up to ``attempts`` times."""
    try:
        await apply(batch)
    except Exception as exc:
        if not conflict(exc):
            raise
        log.info("batch conflicted; applying one by one", extra={"error": repr(exc), "size": len(batch)})
        for item in batch:
            await _retry([item], apply, attempts, conflict, "message conflicted; applying it again")


async def _retry(
    items: Sequence[Incoming],
    apply: Callable[[Sequence[Incoming]], Awaitable[object]],
    attempts: int,
    when: Predicate,
    why: str,
) -> None:
    for attempt in range(attempts):
        try:
            await apply(items)
            return
        except Exception as exc:
            if not when(exc) or attempt == attempts - 1:
                raise
            log.info(why, extra={"error": repr(exc), "size": len(items), "attempt": attempt})


class Pipeline(Generic[U]):
    """The consumer pipeline of one inbox consumer (see the module docstring).

    ``uow`` makes a fresh unit of work per transaction; ``consumer`` is the inbox's consumer name.
    """

    def __init__(
        self,
        uow: Callable[[], U],
        consumer: str,
        *,
        on_conflict: Literal["split", "retry"] = "split",
        attempts: int = 5,
        conflict: Predicate = is_conflict,
        retry_if: Predicate | None = None,
        retry_attempts: int = 3,
    ) -> None:
        self.consumer = consumer
        self._uow = uow
        self._on_conflict = on_conflict
        self._attempts = max(1, attempts)
        self._conflict = conflict
        self._retry_if = retry_if
        self._retry_attempts = max(1, retry_attempts)

    # -- handlers for BatchConsumer ---------------------------------------------------------------

    def each(self, apply_one: ApplyOne[U]) -> BatchHandler:
        """A batch handler that runs ``apply_one`` on every new message (:meth:`apply_each`)."""

        async def handle(batch: list[Incoming]) -> None:
            await self.apply_each(batch, apply_one)

        return handle

    def whole(self, apply: ApplyBatch[U, object], *, claim: bool = True) -> BatchHandler:
        """A batch handler that folds the batch with ``apply`` (:meth:`apply_batch`)."""

        async def handle(batch: list[Incoming]) -> None:
            await self.apply_batch(batch, apply, claim=claim)

        return handle

    # -- the two ways to apply --------------------------------------------------------------------

    async def apply_each(self, batch: Sequence[Incoming], apply_one: ApplyOne[U]) -> None:
        """Apply every message of ``batch`` not yet seen by the consumer, in order, exactly once."""

        async def apply(uow: U, items: list[Incoming]) -> None:
            for item in items:
                with message_context(item):
                    await apply_one(uow, item)

        await self.apply_batch(batch, apply)

    async def apply_batch(self, batch: Sequence[Incoming], apply: ApplyBatch[U, T], *, claim: bool = True) -> list[T]:
        """Apply ``batch`` with ``apply`` in one transaction (or several, after a conflict); return
        what ``apply`` returned in each transaction that committed, in order.

        ``claim=True``: the pipeline claims the inbox and ``apply`` gets the new messages (not
        called when there are none). ``claim=False``: ``apply`` gets every message and claims the
        inbox itself (``uow.inbox`` or a statement of its own), keeping the new ones with :func:`fresh`.
        """
        results: list[T] = []

        async def once(items: Sequence[Incoming]) -> None:
            async with self._uow() as uow:
                todo = list(items)
                if claim:
                    todo = fresh(items, await uow.inbox.claim_new(self.consumer, [i.event_id for i in items]))
                if todo or not claim:
                    result = await apply(uow, todo)
                    await uow.commit()
                    results.append(result)
                else:
                    await uow.commit()

        async def transaction(items: Sequence[Incoming]) -> None:
            if self._retry_if is None:
                await once(items)
            else:
                await _retry(items, once, self._retry_attempts, self._retry_if, "transaction raced; applying it again")

        if self._on_conflict == "split":
            await split_on_conflict(batch, transaction, self._attempts, self._conflict)
        else:
            await _retry(batch, transaction, self._attempts, self._conflict, "batch conflicted; applying it again")
        return results


__all__ = [
    "ApplyBatch",
    "ApplyOne",
    "BatchHandler",
    "Inbox",
    "Pipeline",
    "Transaction",
    "fresh",
    "message_context",
    "split_on_conflict",
]
