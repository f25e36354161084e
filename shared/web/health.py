"""``/health`` (liveness) and ``/health/ready``: :class:`shared.health.Health`, re-exported."""

from __future__ import annotations

from shared.health import Health, ReadinessCheck

__all__ = ["Health", "ReadinessCheck"]
