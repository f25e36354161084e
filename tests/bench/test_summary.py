"""bench/summary.py: a round's result files against the issue's targets."""

from __future__ import annotations

import json
from pathlib import Path

from bench.summary import summarize


def _lat(p50: float, p95: float, p99: float) -> dict[str, float]:
    return {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def test_each_scenario_is_judged_against_its_target(tmp_path: Path) -> None:
    results = {
        "order_payment-1-flat-r": {
            "scenario": "order_payment",
            "mode": "flat out, concurrency 64",
            "completed_per_s": 120.5,
            "latency_completed": _lat(500, 700, 900),
            "ratio_to_floor": 0.4,
            "invariant_problems": [],
            "cpu": {"total_ms_per_op": 15.0},
        },
        "order_payment-2-rate-r": {
            "scenario": "order_payment",
            "mode": "rate 200.0/s",
            "completed_per_s": 199.0,
            "latency_completed": _lat(40, 90, 140),
            "invariant_problems": [],
        },
        "order_payment-3-lowrate-r": {
            "scenario": "order_payment",
            "mode": "rate 20.0/s",
            "completed_per_s": 20.0,
            "latency_completed": _lat(40, 90, 400),
            "invariant_problems": [],
        },
        "coupon_spike-4-r": {
            "scenario": "coupon_spike",
            "requests_per_s": 2100.0,
            "latency_all": _lat(200, 400, 450),
            "issued_quantity": 999,
            "quantity": 1000,
            "users": 2000,
            "invariant_problems": [],
        },
        "balance_charge-5-r": {
            "scenario": "balance_charge",
            "requests_per_s": 2000.0,
            "latency_all": _lat(10, 40, 60),
            "args": {"concurrency": 32},
            "invariant_problems": ["money: user 1 balance 5, charged 6"],
        },
        "top_products-6-r": {
            "scenario": "top_products",
            "requests_per_s": 2999.0,
            "latency_all": _lat(3, 8, 12),
            "args": {"concurrency": 16},
            "invariant_problems": [],
        },
        "top_products-7-other": {
            "scenario": "top_products",
            "requests_per_s": 9999.0,
            "latency_all": _lat(1, 1, 1),
            "args": {"concurrency": 16},
            "invariant_problems": [],
        },
    }
    for stem, body in results.items():
        (tmp_path / f"{stem}.json").write_text(json.dumps(body))
    table = summarize("r", tmp_path).splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table[2:]}
    assert len(rows) == 6  # the file tagged "other" is not part of the round
    assert (
        "not met" in rows["order_payment flat out, concurrency 64"]
        and "15.00" in rows["order_payment flat out, concurrency 64"]
    )
    assert "| met; invariants hold" in rows["order_payment rate 200.0/s"]
    assert "met" not in rows["order_payment rate 20.0/s"]
    assert "not met" in rows["coupon_spike"]  # 999 issued is not exactly 1,000
    assert "| met; 1 invariants BROKEN" in rows["balance_charge (32 clients)"]
    assert "not met" in rows["top_products (16 clients)"]  # 2,999 req/s


def test_no_results(tmp_path: Path) -> None:
    assert "no results" in summarize("nothing", tmp_path)
