"""The local runner (deploy/cluster.py): interrupted during start-up it leaves nothing behind.

Runs `deploy/cluster.py up` against the test servers (its own databases, topic prefix, ports and
state directory), interrupts it while the services start, and looks for any process of that
cluster (each carries CLUSTER_STATE_DIR in its environment).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.infra import Servers, cluster_port_offset, drop_databases

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "deploy" / "cluster.py"

pytestmark = pytest.mark.integration


def _cluster_pids(state_dir: Path) -> list[int]:
    """Every live process started for the cluster of ``state_dir``."""
    marker = f"CLUSTER_STATE_DIR={state_dir.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def runner(infra: Servers, tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    suffix = f"run{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    args = [
        sys.executable,
        str(CLUSTER),
        "up",
        "--no-seed",
        "--state-dir",
        str(state),
        "--port-offset",
        str(cluster_port_offset()),
        "--topic-prefix",
        f"{suffix}.",
        "--db-suffix",
        suffix,
        "--pg-admin-dsn",
        infra.pg_admin_dsn,
        "--kafka-bootstrap",
        infra.kafka_bootstrap,
    ]
    yield args, state
    for pid in _cluster_pids(state):  # only if a test failed: never leave them running
        os.kill(pid, signal.SIGKILL)
    asyncio.run(drop_databases(infra.pg_admin_dsn, suffix))


def _interrupt_during_start(args: list[str], state: Path, log: Path) -> tuple[int, str]:
    with log.open("w") as out:
        up = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (state / "pids").is_dir() or not list((state / "pids").glob("*.pid")):
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert _cluster_pids(state), "a service process runs"
        assert "gateway:" not in log.read_text(), "still starting"
        up.send_signal(signal.SIGINT)  # Ctrl-C
        code = up.wait(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
    return code, log.read_text()


def test_ctrl_c_during_start_up_leaves_no_process(runner: tuple[list[str], Path], tmp_path: Path) -> None:
    args, state = runner
    code, output = _interrupt_during_start(args, state, tmp_path / "first.log")
    assert code == 130, output
    assert "interrupted during start-up" in output
    assert "Traceback" not in output
    assert _cluster_pids(state) == [], output
    assert not list((state / "pids").glob("*.pid")), "no pid file of a process that is gone"

    # the next run starts (it does not think a cluster already runs), and is interrupted cleanly too
    code, output = _interrupt_during_start(args, state, tmp_path / "second.log")
    assert "already runs" not in output
    assert code == 130, output
    assert _cluster_pids(state) == [], output


def test_an_infra_failure_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    """deploy/infra.sh failing ends in a clear message (its own output stays above it)."""
    failing = tmp_path / "infra.sh"
    failing.write_text("#!/bin/sh\necho '[infra] ERROR: PostgreSQL did not start' >&2\nexit 1\n")
    failing.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(CLUSTER), "up", "--no-seed", "--state-dir", str(tmp_path / "state")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"CLUSTER_INFRA_SH": str(failing)},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "[infra] ERROR: PostgreSQL did not start" in done.stderr
    assert "deploy/infra.sh up failed (exit 1)" in done.stderr, done.stderr


def test_ctrl_c_after_start_up_stops_the_services_and_says_what_still_runs(
    runner: tuple[list[str], Path], tmp_path: Path, infra: Servers
) -> None:
    """Through an infra script (as deploy/infra.sh), so the runner owns PostgreSQL and Kafka and
    must say they keep running and how to stop them."""
    args, state = runner
    fake = tmp_path / "infra.sh"
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = env ] && echo "export PG_ADMIN_DSN={infra.pg_admin_dsn}" '
        f'&& echo "export KAFKA_BOOTSTRAP={infra.kafka_bootstrap}"\nexit 0\n'
    )
    fake.chmod(0o755)
    own = [
        a for a in args if a not in (infra.pg_admin_dsn, infra.kafka_bootstrap, "--pg-admin-dsn", "--kafka-bootstrap")
    ]
    log = tmp_path / "run.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            own, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"CLUSTER_INFRA_SH": str(fake)}
        )
    try:
        deadline = time.monotonic() + 180
        while "running; Ctrl-C" not in log.read_text():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) == 0, log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
    output = log.read_text()
    assert _cluster_pids(state) == [], output
    assert "PostgreSQL and Kafka (deploy/infra.sh) keep running" in output
    assert "deploy/infra.sh down" in output
