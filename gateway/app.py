"""``create_app(settings)``: the gateway application."""

from aiohttp import web

from gateway.config import Settings
from shared.web.app import create_base_app


def create_app(settings: Settings) -> web.Application:
    """Build the gateway (its routes come with the gateway issue)."""
    return create_base_app(settings, service="gateway")
