"""deploy/monitoring: the Prometheus config and alert rules (``promtool``), the Grafana dashboard,
and that every metric they name is one the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from shared.web.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
PACKAGES = (
    "shared",
    "gateway",
    "balance_service",
    "catalog_service",
    "coupon_service",
    "order_service",
    "ranking_service",
)
BUILTIN = {"up"}  # written by Prometheus itself
_DEFINED = re.compile(
    r"(?:Counter|Gauge|Histogram|Summary|GaugeMetricFamily|CounterMetricFamily|HistogramMetricFamily)"
    r"\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\""
)
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_prometheus_config_is_valid() -> None:
    run(promtool(), "check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.yml"))


def test_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    tool = promtool()
    assert RULES
    run(tool, "check", "rules", *map(str, RULES))
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    out = run(tool, "test", "rules", *(t.name for t in tests), cwd=PROMETHEUS / "tests")
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {
        "ServiceDown",
        "HighErrorRate",
        "SagasStuck",
        "OutboxNotDraining",
        "ConsumerLagHigh",
        "DeadLetters",
        "CompensationDeadLettered",
    } <= alerts
    tested = {
        case["alertname"]
        for path in (PROMETHEUS / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert alerts == tested


def test_scrape_config_covers_every_service_of_the_topology() -> None:
    topology = tomllib.loads((ROOT / "deploy" / "services.toml").read_text())["services"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for name, spec in topology.items():
        assert jobs[name] == [f"{name}:{spec['base_port']}"], name
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping, ranges and strings dropped)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", text)  # numbers, 1e9 included
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in _KEYWORDS or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def test_metric_names_parser() -> None:
    assert metric_names('sum by (job) (rate(a_total{status=~"5.."}[5m])) / sum by (job) (rate(b[5m])) > 0.05') == {
        "a_total",
        "b",
    }
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))") == {"x_bucket"}
    assert metric_names("time() - y_seconds > 120") == {"y_seconds"}
    assert metric_names("sum(z_bytes) / 1e9 + 2.5E-3") == {"z_bytes"}


def exported() -> set[str]:
    """Every metric name the code defines, as Prometheus sees the series (with histogram suffixes)."""
    names = set(BUILTIN)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(_DEFINED.findall(path.read_text()))
    names.update(sample.name for family in Metrics("probe").registry.collect() for sample in family.samples)
    for name in list(names):
        names.update(f"{name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    return names


def expressions() -> list[tuple[str, str]]:
    found = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(f"{path.name}:{rule['alert']}", rule["expr"]) for rule in group["rules"]]
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            found += [(f"{path.name}:{panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    return found


def test_every_metric_in_rules_and_dashboards_is_exported_by_the_code() -> None:
    known = exported()
    assert {
        "orders_finished_total",
        "saga_duration_seconds_bucket",
        "process_cpu_seconds_total",
        "db_pool_connections",
        "outbox_rows_waiting",
        "kafka_consumer_lag_records",
        "dead_letters_total",
    } <= known
    missing = {where: sorted(metric_names(expr) - known) for where, expr in expressions() if metric_names(expr) - known}
    assert not missing, missing


def test_dashboard_is_provisioned_and_well_formed() -> None:
    assert [p.name for p in DASHBOARDS] == ["order-flow.json"]
    dash = json.loads(DASHBOARDS[0].read_text())
    assert dash["uid"] == "order-flow" and dash["title"] == "Order flow"
    ids = [panel["id"] for panel in dash["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [panel for panel in dash["panels"] if panel["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["datasource"]["uid"] == "prometheus" and panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    provider = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert {s["uid"] for s in sources["datasources"]} == {"prometheus", "jaeger"}
