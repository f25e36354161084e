"""The admin saga view: one order's saga with its history, and the unfinished sagas by age."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from order_service.domain.commands import OrderSaga, UnfinishedSagas
from order_service.domain.errors import OrderNotFoundError
from order_service.service.deps import Deps
from order_service.service.orders import is_uuid
from order_service.service.ports import Row


async def order_saga(deps: Deps, cmd: OrderSaga) -> tuple[Row, Sequence[Row]]:
    """The saga row of an order and its history, oldest first."""
    found = None
    if is_uuid(cmd.order_id):
        async with deps.statement() as uow:
            found = await uow.sagas.view(cmd.order_id)
    if found is None:
        raise OrderNotFoundError(f"order {cmd.order_id} does not exist")
    return found


async def unfinished_sagas(deps: Deps, cmd: UnfinishedSagas) -> Sequence[Row]:
    """Up to ``cmd.limit`` unfinished sagas, oldest first."""
    before = deps.clock() - timedelta(seconds=cmd.older_than_s) if cmd.older_than_s is not None else None
    async with deps.statement() as uow:
        return await uow.sagas.unfinished(step=cmd.step, started_before=before, limit=cmd.limit, after=cmd.after)
