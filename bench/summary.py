"""A markdown table of one ``run_all.sh`` round: every result file tagged ``<tag>``, against its target.

python -m bench summary --tag round3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _check(ok: bool) -> str:
    return "met" if ok else "not met"


def row(result: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    """(scenario, target, reached, latency, CPU ms/op, verdict) of one result file."""
    scenario = result["scenario"]
    cpu = (result.get("cpu") or {}).get("total_ms_per_op")
    cpu_text = "-" if cpu is None else f"{cpu:.2f}"
    broken = result.get("invariant_problems") or []
    holds = "invariants hold" if not broken else f"{len(broken)} invariants BROKEN"
    if scenario == "order_payment":
        lat = result["latency_completed"]
        latency = f"p50 {_ms(lat['p50_ms'])}, p95 {_ms(lat['p95_ms'])}, p99 {_ms(lat['p99_ms'])} ms"
        rate = result["completed_per_s"]
        floor = result.get("ratio_to_floor")
        reached = f"{rate} completed/s" + (f" ({floor} of the floor)" if floor else "")
        if result["mode"].startswith("flat"):
            return (
                f"order_payment {result['mode']}",
                ">= 400 completed/s",
                reached,
                latency,
                cpu_text,
                f"{_check(rate >= 400)}; {holds}",
            )
        offered = float(result["mode"].split()[1].removesuffix("/s"))
        if offered < 200:
            return (
                f"order_payment {result['mode']}",
                "(latency below the target rate)",
                reached,
                latency,
                cpu_text,
                holds,
            )
        return (
            f"order_payment {result['mode']}",
            "p99 <= 150 ms at 200/s",
            reached,
            latency,
            cpu_text,
            f"{_check((lat['p99_ms'] or 1e9) <= 150 and rate >= 0.97 * offered)}; {holds}",
        )
    lat = result["latency_all"]
    rate = result["requests_per_s"]
    if scenario == "coupon_spike":
        exact = result["issued_quantity"] == min(result["quantity"], result["users"])
        ok = rate >= 2000 and (lat["p99_ms"] or 1e9) <= 500 and exact
        label = "coupon_spike" + (
            " (warm connections)" if str(result.get("connections", "")).startswith("warm") else ""
        )
        return (
            label,
            ">= 2,000 req/s, p99 <= 500 ms, exactly 1,000",
            f"{rate} req/s, {result['issued_quantity']} issued",
            f"p50 {_ms(lat['p50_ms'])}, p99 {_ms(lat['p99_ms'])} ms",
            cpu_text,
            f"{_check(ok)}; {holds}",
        )
    targets = {"balance_charge": (1500, 50), "top_products": (3000, 10)}
    need, p95 = targets[scenario]
    ok = rate >= need and (lat["p95_ms"] or 1e9) <= p95
    concurrency = result.get("args", {}).get("concurrency")
    return (
        f"{scenario} ({concurrency} clients)",
        f">= {need:,} req/s, p95 <= {p95} ms",
        f"{rate} req/s",
        f"p50 {_ms(lat['p50_ms'])}, p95 {_ms(lat['p95_ms'])}, p99 {_ms(lat['p99_ms'])} ms",
        cpu_text,
        f"{_check(ok)}; {holds}",
    )


def summarize(tag: str, results: Path = RESULTS) -> str:
    files = sorted(results.glob(f"*-{tag}.json"), key=lambda p: p.stat().st_mtime)
    lines = ["| scenario | target | reached | latency | CPU ms/op | verdict |", "|---|---|---|---|---|---|"]
    for path in files:
        lines.append("| " + " | ".join(row(json.loads(path.read_text()))) + " |")
    return "\n".join(lines) if files else f"no results tagged {tag!r} in {results}"
