"""CPU time per component during a measured window, from ``/proc/<pid>/stat`` (Linux only).

    meter = CpuMeter.for_cluster(state_dir)   # the cluster's processes, PostgreSQL, Kafka, this process
    meter.start()
    ...                                       # the measured load
    report = meter.stop(operations=1234)      # {"window_s", "cores", "per_op_ms", "seconds"} per component

Components: each service process of ``deploy/cluster.py`` (by its name, e.g. ``order-0``), then
``postgres`` (every process whose command is ``postgres``), ``kafka`` (the JVM running
``kafka.Kafka``) and ``bench`` (this load generator). PostgreSQL and Kafka are found by scanning
``/proc``, so a shared server counts the work of everything else that uses it in the window.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process in seconds; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def scan_servers() -> dict[int, str]:
    """pid -> ``postgres`` | ``kafka`` for every such process on the machine."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _comm(pid) == "postgres":
            found[pid] = "postgres"
        elif "kafka.Kafka" in _cmdline(pid):
            found[pid] = "kafka"
    return found


class CpuMeter:
    def __init__(self, processes: dict[int, str]) -> None:
        self.processes = dict(processes)
        self._before: dict[int, float] = {}
        self._t0 = 0.0

    @classmethod
    def for_cluster(cls, state_dir: Path | str | None) -> CpuMeter:
        procs: dict[int, str] = {os.getpid(): "bench"}
        if state_dir is not None:
            for pid_file in sorted((Path(state_dir) / "pids").glob("*.pid")):
                try:
                    procs[int(pid_file.read_text())] = pid_file.stem
                except (OSError, ValueError):
                    continue
        return cls(procs)

    def start(self) -> None:
        # PostgreSQL forks a backend per connection: rescan at both ends, count what lived through
        self.processes.update(scan_servers())
        self._before = {pid: s for pid in self.processes if (s := cpu_seconds(pid)) is not None}
        self._t0 = time.monotonic()

    def stop(self, operations: int = 0) -> dict[str, Any]:
        window = time.monotonic() - self._t0
        found = scan_servers()
        self.processes.update(found)
        used: dict[str, float] = {}
        for pid, name in self.processes.items():
            now = cpu_seconds(pid)
            if now is None:
                continue
            used[name] = used.get(name, 0.0) + now - self._before.get(pid, 0.0 if pid in found else now)
        total = sum(used.values())
        rows = sorted(used.items(), key=lambda kv: -kv[1])
        return {
            "window_s": round(window, 3),
            "total_cores": round(total / window, 2) if window else None,
            "total_ms_per_op": round(1000 * total / operations, 3) if operations else None,
            "components": {
                name: {
                    "cpu_s": round(s, 2),
                    "cores": round(s / window, 2) if window else None,
                    "ms_per_op": round(1000 * s / operations, 3) if operations else None,
                }
                for name, s in rows
            },
        }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"CPU over {report['window_s']} s: {report['total_cores']} cores"
        + (f", {report['total_ms_per_op']} ms per operation" if report.get("total_ms_per_op") else "")
    ]
    for name, row in report["components"].items():
        per = f"  {row['ms_per_op']:7.3f} ms/op" if row.get("ms_per_op") is not None else ""
        lines.append(f"  {name:<14} {row['cpu_s']:7.2f} s  {row['cores']:5.2f} cores{per}")
    return "\n".join(lines)
