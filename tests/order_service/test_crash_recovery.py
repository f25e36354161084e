"""SIGKILL of the only ``python -m order_service`` process mid-saga; a new process finishes the saga."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.order_service.support import HOLD, LookupStub, ScriptedParticipants, eventually

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.asyncio(loop_scope="session")]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "order_service"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw) -> tuple[int, dict]:
    try:
        async with session.request(method, url, **kw) as resp:
            return resp.status, await resp.json()
    except aiohttp.ClientError:
        return 0, {}


async def test_sigkill_mid_saga_then_restart_finishes_it(new_database, kafka_bootstrap, topic_prefix) -> None:
    prefix = f"{topic_prefix}crash."
    stub = LookupStub()
    stub.products[10] = {"name": "Apple", "price": 1000, "status": "SELLABLE"}
    stub.users.add(42)
    stub_server = TestServer(stub.app())
    await stub_server.start_server()
    parts = ScriptedParticipants(kafka_bootstrap, prefix)
    parts.script(42, DeductStock=HOLD)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ORDER_DATABASE_URL": await new_database("order_crash"),
        "ORDER_PORT": str(port),
        "ORDER_KAFKA_TOPIC_PREFIX": prefix,
        "ORDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ORDER_CATALOG_URL": str(stub_server.make_url("")).rstrip("/"),
        "ORDER_BALANCE_URL": str(stub_server.make_url("")).rstrip("/"),
        # The killed consumer keeps its partitions until its session times out (10 s): the step
        # timeout budget (3 x 5 s) outlasts that, so the held reply is still read and completes.
        "ORDER_SAGA_STEP_TIMEOUT_S": "5",
        "ORDER_OUTBOX_POLL_INTERVAL_S": "0.2",
        "ORDER_ACCESS_LOG": "false",
    }
    procs: list[subprocess.Popen] = []
    try:
        async with aiohttp.ClientSession() as session:
            procs.append(_start(env))
            await eventually(lambda: _ready(session, base), timeout=60, interval=0.3)
            await parts.start()
            status, body = await _json(
                session,
                "POST",
                f"{base}/api/v1/orders",
                headers={"Prefer": "respond-async"},
                json={"user_id": 42, "user_coupon_id": 3, "items": [{"product_id": 10, "quantity": 2}]},
            )
            assert status == 202, body
            oid = body["order_id"]
            await eventually(lambda: _is(any(c.order_id == oid for c in parts.held)), timeout=30)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            parts.script(42)  # the stock step answers from now on
            await parts.answer_held()
            procs.append(_start(env))
            final = await eventually(
                lambda: _finished(session, f"{base}/api/v1/orders/{oid}"), timeout=60, interval=0.3
            )
            assert final["status"] == "COMPLETED" and final["paid_amount"] == 1500
            await eventually(lambda: _is("ConfirmCoupon" in parts.commands(oid)), timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        await parts.stop()
        await stub_server.close()


async def _is(value: bool) -> bool:
    return value


async def _ready(session: aiohttp.ClientSession, base: str) -> bool:
    status, _ = await _json(session, "GET", f"{base}/health/ready")
    return status == 200


async def _finished(session: aiohttp.ClientSession, url: str) -> dict | None:
    status, body = await _json(session, "GET", url)
    return body if status == 200 and body["status"] != "PENDING" else None
