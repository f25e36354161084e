"""A service stopped behind the gateway: 503 quickly, and it recovers when the service is back."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import Api, Cluster, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.slow]


@pytest.mark.asyncio
async def test_killed_service_is_503_fast_then_recovers(api: Api, cluster: Cluster) -> None:
    product = await api.product(price=500, stock=1)
    os.kill(cluster.pid("catalog-0"), signal.SIGKILL)

    async def down() -> bool:
        return (await api.call("GET", f"/api/v1/products/{product}"))[0] == 503

    await eventually(down, timeout=10)
    for _ in range(5):
        started = time.monotonic()
        status, data, headers = await api.call("GET", f"/api/v1/products/{product}")
        assert time.monotonic() - started < 1.0
        assert (status, data["code"]) == (503, "SERVICE_UNAVAILABLE")
        assert int(headers["Retry-After"]) >= 1
    ready_status, ready, _ = await api.call("GET", "/health/ready")
    assert ready_status == 503 and ready["checks"]["catalog"].startswith("down")
    assert (await api.call("GET", "/api/v1/users/999999999"))[0] == 404  # the others still answer

    result = cluster.run("start", "catalog-0")
    assert result.returncode == 0, result.stdout + result.stderr

    async def back() -> bool:
        return (await api.call("GET", f"/api/v1/products/{product}"))[0] == 200

    await eventually(back, timeout=20)
    assert (await api.call("GET", "/health/ready"))[0] == 200
