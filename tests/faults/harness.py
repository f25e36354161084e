"""Machinery of the fault suite: a private cluster, a steady order load, gateway probes, checks.

Everything here talks to the cluster from outside: the public API through the gateway, the
cluster's private Kafka broker (reading ``order.*`` and the saga topics) and ``deploy/cluster.py``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from bench.load import Api, RunData

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster.py"
SERVICES = ("balance", "catalog", "coupon", "order", "ranking")
TERMINAL = {"COMPLETED", "FAILED"}
GATEWAY_TIMEOUT_S = 5.0  # GATEWAY_TIMEOUT_S default: a frozen upstream answers 504 after this
ORDER_CREATE_TIMEOUT_S = 15.0  # GATEWAY_ORDER_CREATE_TIMEOUT_S default


@dataclass(frozen=True)
class FaultCluster:
    state_dir: Path
    gateway: str
    admin_token: str
    topic_prefix: str
    kafka_bootstrap: str

    def run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [sys.executable, str(CLUSTER), *args, "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"cluster.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def signal(self, name: str, sig: str) -> None:
        self.run("signal", name, sig)

    def start(self, name: str) -> None:
        self.run("start", name)

    def topic(self, base: str) -> str:
        return f"{self.topic_prefix}{base}"

    def instances(self) -> dict[str, int]:
        """Every process of the cluster (``order-0``, ``gateway-0``, ...) and its HTTP port."""
        procs = json.loads((self.state_dir / "cluster.json").read_text())["procs"]
        return {p["name"]: p["port"] for p in procs}

    async def unready(self, session: aiohttp.ClientSession, bound_s: float) -> list[str]:
        """Wait until every instance answers ``/health/ready`` 200; those that still do not after ``bound_s``."""
        deadline = time.monotonic() + bound_s
        waiting = self.instances()
        while True:
            answers = await asyncio.gather(*(_ready(session, port) for port in waiting.values()))
            waiting = {name: port for (name, port), ok in zip(waiting.items(), answers, strict=True) if not ok}
            if not waiting or time.monotonic() > deadline:
                return sorted(waiting)
            await asyncio.sleep(0.5)

    def log_excerpt(self, per_instance: int = 6, width: int = 400) -> str:
        """The last warnings and errors each instance logged: what a failed fault run prints, since
        the logs are deleted with the cluster."""
        lines = []
        for path in sorted((self.state_dir / "logs").glob("*.log")):
            worst = [
                line[:width]
                for line in path.read_text(errors="replace").splitlines()
                if '"level":"ERROR"' in line
                or '"level":"WARNING"' in line
                or '"level":"CRITICAL"' in line
                or (line and not line.startswith("{"))  # a traceback or an interpreter message
            ]
            if worst:
                lines.append(f"--- {path.stem}: last {min(per_instance, len(worst))} of {len(worst)} warnings/errors")
                lines.extend(worst[-per_instance:])
        return "\n".join(lines) or "(no warning or error logged)"


async def _ready(session: aiohttp.ClientSession, port: int) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{port}/health/ready", timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


# ---------------------------------------------------------------------------------- probes


@dataclass
class Probe:
    """A GET through the gateway to each service in turn, a few times a second."""

    api: Api
    run: RunData
    samples: list[tuple[float, str, int, float]] = field(default_factory=list)  # (t, service, status, s)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def paths(self) -> dict[str, str]:
        user = self.run.user_ids[0]
        product = self.run.product_ids[0]
        return {
            "balance": f"/api/v1/users/{user}/balance",
            "catalog": f"/api/v1/products/{product}",
            "coupon": f"/api/v1/coupons/{self.run.coupon_ids[0]}",
            "order": f"/api/v1/users/{user}/orders?limit=1",
            "ranking": "/api/v1/rankings/top-products?days=1&limit=1",
        }

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task

    async def _probe(self, service: str, path: str) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(GATEWAY_TIMEOUT_S * 3):
                status, _ = await self.api.call("GET", path)
        except (aiohttp.ClientError, TimeoutError):
            status = 0  # no answer: the gateway hung (or refused)
        self.samples.append((started, service, status, time.monotonic() - started))

    async def _run(self) -> None:
        paths = self.paths()
        while not self._stop.is_set():
            # every service at once, so a frozen one does not slow down the probes of the others
            await asyncio.gather(*(self._probe(s, p) for s, p in paths.items()), asyncio.sleep(0.3))

    def during(
        self, start: float, end: float, services: tuple[str, ...] = SERVICES
    ) -> list[tuple[float, str, int, float]]:
        return [s for s in self.samples if start <= s[0] <= end and s[1] in services]


# ---------------------------------------------------------------------------------- checks


async def read_events(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its current end."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        if not partitions:
            return []
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                batches = await consumer.getmany(*partitions, timeout_ms=200)
                for batch in batches.values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def pending_orders(api: Api, run: RunData) -> int:
    """How many of the run's orders are PENDING now (through the gateway; -1 if it cannot tell)."""
    pending = 0
    for user in run.user_ids:
        status, page = await api.call("GET", f"/api/v1/users/{user}/orders?limit=100")
        if status != 200:
            return -1
        pending += sum(1 for o in page["items"] if o["status"] == "PENDING")
    return pending


async def settle(api: Api, run: RunData, bound_s: float) -> float:
    """Poll until no order of the run's users is PENDING (or ``bound_s`` passes); seconds taken."""
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        if await pending_orders(api, run) == 0:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


# ----------------------------------------------------------------------------------- table


@dataclass
class Row:
    fault: str
    in_flight: int
    completed: int
    failed: int
    invariants: str
    recovery_s: float
    max_latency_s: float
    statuses: str


def table(rows: list[Row]) -> str:
    head = ("fault", "in flight", "completed", "failed", "invariants", "recovery s", "max gw s", "gateway during fault")
    lines = [
        [
            r.fault,
            str(r.in_flight),
            str(r.completed),
            str(r.failed),
            r.invariants,
            f"{r.recovery_s:.1f}",
            f"{r.max_latency_s:.2f}",
            r.statuses,
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*line) for line in lines)]
    )


def status_summary(samples: list[tuple[float, str, int, float]]) -> str:
    counts: dict[int, int] = defaultdict(int)
    for _, _, status, _ in samples:
        counts[status] += 1
    return " ".join(f"{s}x{n}" for s, n in sorted(counts.items()))
