"""The whole cluster, started once per session through deploy/cluster.py on private ports, topics
and databases, and stopped at the end. Every test talks to the gateway only."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.infra import cluster_port_offset, drop_databases

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster.py"


@dataclass(frozen=True)
class Cluster:
    """What a test needs to know about the running cluster."""

    state_dir: Path
    gateway: str
    admin_token: str
    topic_prefix: str
    kafka_bootstrap: str

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(CLUSTER), *args, "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def pid(self, name: str) -> int:
        return int((self.state_dir / "pids" / f"{name}.pid").read_text())


@contextlib.contextmanager
def running_cluster(*extra: str) -> Iterator[Cluster]:
    """A private cluster through deploy/cluster.py (``extra``: more ``up`` arguments, e.g.
    ``--env KEY=VALUE``), stopped and its databases dropped on exit."""
    run_id = uuid.uuid4().hex[:8]
    state_dir = ROOT / ".local" / f"e2e-{run_id}"
    args = ["--no-seed", "--detach", "--topic-prefix", f"e2e{run_id}.", "--db-suffix", f"e2e{run_id}", *extra]
    result = None
    for _ in range(3):  # a random port range; try another if one is taken
        offset = cluster_port_offset()
        result = subprocess.run(
            [sys.executable, str(CLUSTER), "--state-dir", str(state_dir), "up", *args, "--port-offset", str(offset)],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=ROOT,
        )
        if result.returncode == 0:
            break
    info = json.loads((state_dir / "cluster.json").read_text()) if (state_dir / "cluster.json").exists() else {}
    try:
        assert result is not None and result.returncode == 0, (
            f"cluster did not start:\n{result.stdout}\n{result.stderr}"
        )
        yield Cluster(
            state_dir, info["gateway_url"], info["admin_token"], info["topic_prefix"], info["kafka_bootstrap"]
        )
    finally:
        subprocess.run(
            [sys.executable, str(CLUSTER), "--state-dir", str(state_dir), "down"],
            capture_output=True,
            timeout=120,
            cwd=ROOT,
        )
        if info:
            asyncio.run(drop_databases(info["pg_admin_dsn"], f"e2e{run_id}"))
        if not os.environ.get("E2E_KEEP_LOGS"):
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


class Api:
    """A small client of the public API."""

    def __init__(self, session: aiohttp.ClientSession, cluster: Cluster) -> None:
        self.session = session
        self.base = cluster.gateway
        self.admin = {"X-Admin-Token": cluster.admin_token}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, Any]:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if raw is not None:
            kwargs["data"] = io.BytesIO(raw)
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs["headers"]}
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = text
            return resp.status, data, resp.headers

    async def ok(self, method: str, path: str, body: Any = None, expect: int = 200, **kw: Any) -> Any:
        status, data, _ = await self.call(method, path, body, **kw)
        assert status == expect, f"{method} {path}: {status} {data}"
        return data

    async def user(self, balance: int = 0) -> int:
        user = await self.ok("POST", "/api/v1/users", {"name": f"e2e-{uuid.uuid4().hex[:6]}"}, expect=201)
        if balance:
            await self.ok("POST", f"/api/v1/users/{user['user_id']}/balance/charge", {"amount": balance})
        return user["user_id"]

    async def product(self, price: int = 1000, stock: int = 10) -> int:
        body = {"name": f"e2e-product-{uuid.uuid4().hex[:6]}", "price": price, "stock": stock}
        return (await self.ok("POST", "/api/v1/admin/products", body, expect=201, headers=self.admin))["product_id"]

    async def coupon(self, **overrides: Any) -> int:
        body = {
            "name": f"e2e-coupon-{uuid.uuid4().hex[:6]}",
            "discount_type": "FIXED",
            "discount_value": 1000,
            "total_quantity": 10,
            "valid_days": 7,
        } | overrides
        return (await self.ok("POST", "/api/v1/admin/coupons", body, expect=201, headers=self.admin))["coupon_id"]

    async def issue(self, coupon_id: int, user_id: int) -> int:
        body = {"user_id": user_id}
        return (await self.ok("POST", f"/api/v1/coupons/{coupon_id}/issue", body, expect=201))["user_coupon_id"]

    async def balance(self, user_id: int) -> int:
        return (await self.ok("GET", f"/api/v1/users/{user_id}/balance"))["balance"]

    async def stock(self, product_id: int) -> int:
        return (await self.ok("GET", f"/api/v1/products/{product_id}"))["stock"]


@pytest_asyncio.fixture(scope="package")
async def api(cluster: Cluster) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, cluster)


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with its last value at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not reached within {timeout}s; last value {last!r}")


def assert_problem(status: int, data: Any, expect_status: int, code: str | None = None) -> None:
    assert status == expect_status, f"{status} {data}"
    assert isinstance(data, dict) and data.get("status") == status and data.get("code"), data
    if code is not None:
        assert data["code"] == code, data
