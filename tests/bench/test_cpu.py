"""bench/cpu.py: CPU time per component from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.cpu import CpuMeter, cpu_seconds, render

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_counts_the_cpu_a_process_used_in_the_window(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "gone-0.pid").write_text("999999999")  # a dead process is skipped
    meter = CpuMeter.for_cluster(tmp_path)
    _burn(0.05)  # before the window: not counted
    meter.start()
    _burn(0.3)
    report = meter.stop(operations=100)
    bench = report["components"]["bench"]
    assert 0.25 <= bench["cpu_s"] <= 0.6
    assert bench["ms_per_op"] == pytest.approx(1000 * bench["cpu_s"] / 100, rel=0.01)
    assert "gone-0" not in report["components"]
    assert report["total_cores"] > 0
    assert "bench" in render(report)


def test_cpu_seconds_of_self_and_of_nothing() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(999999999) is None
