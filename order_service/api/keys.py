"""Typed application keys of order_service."""

from aiohttp import web

from order_service.db.outcomes import OutcomeWaiter
from order_service.service.orders import OrderDeps

ORDER_DEPS = web.AppKey("order_deps", OrderDeps)
WAITER = web.AppKey("outcome_waiter", OutcomeWaiter)
WAIT_TIMEOUT = web.AppKey("order_wait_timeout_s", float)
