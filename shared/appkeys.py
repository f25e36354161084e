"""The application keys every service's app holds, for the modules that wire into it without
being web modules (the database pool registers its gauges and readiness check)."""

from __future__ import annotations

from aiohttp import web

from shared.config import BaseServiceSettings
from shared.health import Health
from shared.metrics import Metrics

SETTINGS = web.AppKey("settings", BaseServiceSettings)
METRICS = web.AppKey("metrics", Metrics)
HEALTH = web.AppKey("health", Health)

__all__ = ["HEALTH", "METRICS", "SETTINGS"]
