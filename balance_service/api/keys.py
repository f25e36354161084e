"""Typed application keys of balance_service."""

from aiohttp import web

from balance_service.service.balances import Charges

CHARGES = web.AppKey("charges", Charges)
