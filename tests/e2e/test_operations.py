"""Operating the cluster: the demo data one-shot (compose's seed) and the gateway's probes."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Api, Cluster

pytestmark = [pytest.mark.e2e]


def test_seed_once_creates_the_demo_data_then_leaves_it(cluster: Cluster) -> None:
    args = ("seed", "--gateway", cluster.gateway, f"--token={cluster.admin_token}", "--once")
    first = cluster.run(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "seeded demo data" in first.stdout
    second = cluster.run(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already present" in second.stdout


@pytest.mark.asyncio
async def test_the_gateway_serves_and_reports_each_service(api: Api) -> None:
    status, serving, _ = await api.call("GET", "/health/serving")
    assert status == 200 and set(serving["services"]) == {"balance", "catalog", "coupon", "order", "ranking"}
    status, ready, _ = await api.call("GET", "/health/ready")
    assert status == 200 and set(ready["checks"].values()) == {"up"}
