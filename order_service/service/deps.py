"""The handlers' dependencies, built once by ``order_service.bootstrap``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from order_service.domain.saga import Policy
from order_service.service.flow_metrics import FlowMetrics
from order_service.service.ports import Catalog, OutcomeWaiter, UnitOfWork
from shared.known_users import KnownUsers
from shared.messaging.envelope import utcnow
from shared.messaging.topics import Topics


def new_order_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Deps:
    """``uow()``: a transaction; ``statement()``: no transaction block, for a change that is one
    statement (placing an order) and for reads."""

    uow: Callable[[], UnitOfWork]
    statement: Callable[[], UnitOfWork]
    topics: Topics
    policy: Policy
    catalog: Catalog
    users: KnownUsers
    waiter: OutcomeWaiter
    wait_timeout_s: float = 10.0
    metrics: FlowMetrics | None = None
    clock: Callable[[], datetime] = utcnow
    new_id: Callable[[], str] = new_order_id
