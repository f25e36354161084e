"""Static checks of the deployment files against deploy/services.toml.

docker-compose.yml cannot be run in CI (no Docker engine), so this keeps it honest:
the compose file, deploy/infra.sh (local PostgreSQL + Kafka), the postgres init
script and the Dockerfile must all agree with the single source of truth,
deploy/services.toml, which the local cluster runner reads too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES_TOML = ROOT / "deploy" / "services.toml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
INFRA_SH = ROOT / "deploy" / "infra.sh"
PG_INIT = ROOT / "deploy" / "postgres" / "init-databases.sh"
KAFKA_POM = ROOT / "deploy" / "kafka" / "pom.xml"
KAFKA_TEMPLATE = ROOT / "deploy" / "kafka" / "server.properties.template"

INFRA_SERVICES = {"postgres", "kafka", "kafka-init"}
# Profile "observability" (deploy/monitoring): not started by a plain `docker compose up`.
OBSERVABILITY_SERVICES = {"prometheus", "grafana", "jaeger"}
# one-shots: every service's migrations before the services; the demo data after the gateway
ONE_SHOTS = {"migrate", "seed"}
EXPECTED_APP_SERVICES = {"balance", "catalog", "coupon", "order", "ranking", "gateway"}


# --------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def topology() -> dict[str, Any]:
    with SERVICES_TOML.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def app_services(topology: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return topology["services"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def compose_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "docker-compose.yml has no services"
    return services


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as a name -> string mapping (dict or list form)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        out: dict[str, str] = {}
        for item in raw:
            name, _, value = str(item).partition("=")
            out[name] = value
        return out
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as name -> condition (the short list form means service_started)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {str(name): "service_started" for name in raw}
    return {str(name): str((spec or {}).get("condition", "service_started")) for name, spec in raw.items()}


def _expected_env(name: str, spec: dict[str, Any], app_services: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Env var names (and the value compose must give, None = any) per the services.toml contract."""
    p = spec["env_prefix"]
    env: dict[str, str | None] = {
        f"{p}_HOST": "0.0.0.0",
        f"{p}_PORT": str(spec["base_port"]),
        f"{p}_ENVIRONMENT": "production",
    }
    if spec.get("database"):
        env[f"{p}_DATABASE_URL"] = f"postgresql://postgres:postgres@postgres:5432/{spec['database']}"
    if spec.get("kafka"):
        env[f"{p}_KAFKA_BOOTSTRAP"] = "kafka:9092"
    for key, target in spec.get("upstreams", {}).items():
        env[f"{p}_{key}"] = f"http://{target}:{app_services[target]['base_port']}"
    for extra in spec.get("extra_env", []):
        env[f"{p}_{extra}"] = None
    # the standard OpenTelemetry variables (shared/tracing.py): tracing off unless an endpoint is set
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"
    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    return env


def _infra(*args: str) -> list[str]:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not available")
    result = subprocess.run(
        [bash, str(INFRA_SH), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    assert result.returncode == 0, f"infra.sh {' '.join(args)} failed: {result.stderr}"
    return [line for line in result.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------ services.toml itself


def test_services_toml_is_consistent(topology: dict[str, Any], app_services: dict[str, dict[str, Any]]) -> None:
    assert set(app_services) == EXPECTED_APP_SERVICES
    ports = [s["base_port"] for s in app_services.values()]
    assert len(set(ports)) == len(ports), "base ports must be unique"
    packages = [s["package"] for s in app_services.values()]
    assert len(set(packages)) == len(packages), "packages must be unique"
    prefixes = [s["env_prefix"] for s in app_services.values()]
    assert len(set(prefixes)) == len(prefixes), "env prefixes must be unique"
    for name, spec in app_services.items():
        assert re.fullmatch(r"[a-z_]+", spec["package"]), name
        assert re.fullmatch(r"[A-Z]+", spec["env_prefix"]), name
        assert isinstance(spec["base_port"], int), name
        for key, target in spec.get("upstreams", {}).items():
            assert target in app_services, f"{name}: upstream {key} -> unknown service {target!r}"
            assert key.endswith(("_URL", "_URLS")), f"{name}: upstream key {key} must end in _URL or _URLS"
    kafka = topology["kafka"]
    assert isinstance(kafka["partitions"], int) and kafka["partitions"] >= 1
    assert kafka["topics"] and len(set(kafka["topics"])) == len(kafka["topics"])
    assert sum(1 for s in app_services.values() if s.get("public")) == 1


# ------------------------------------------------------------------------ compose


def test_compose_names_every_service(compose_services: dict[str, Any], app_services: dict[str, Any]) -> None:
    assert set(compose_services) == INFRA_SERVICES | ONE_SHOTS | set(app_services) | OBSERVABILITY_SERVICES


def test_only_the_public_service_publishes_ports(
    compose_services: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    publishing = {
        name for name, svc in compose_services.items() if svc.get("ports") and name not in OBSERVABILITY_SERVICES
    }
    public = {name for name, spec in app_services.items() if spec.get("public")}
    assert publishing == public == {"gateway"}
    port = app_services["gateway"]["base_port"]
    assert [str(p) for p in compose_services["gateway"]["ports"]] == [f"{port}:{port}"]


def test_infrastructure_services(compose_services: dict[str, Any], topology: dict[str, Any]) -> None:
    pg = compose_services["postgres"]
    assert str(pg["image"]).startswith("postgres:15")
    assert "pg_isready" in str(pg["healthcheck"]["test"])
    mounts = [str(v) for v in pg.get("volumes", [])]
    assert any(m.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/") for m in mounts), mounts

    kafka = compose_services["kafka"]
    env = _env(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "true"
    assert env["KAFKA_NUM_PARTITIONS"] == str(topology["kafka"]["partitions"])
    assert "kafka-broker-api-versions.sh" in str(kafka["healthcheck"]["test"]) or "kafka-topics.sh" in str(
        kafka["healthcheck"]["test"]
    )

    init = compose_services["kafka-init"]
    assert init["image"] == kafka["image"]
    assert _depends_on(init) == {"kafka": "service_healthy"}


def test_kafka_version_matches_local_runner(compose_services: dict[str, Any]) -> None:
    image = str(compose_services["kafka"]["image"])
    assert image.startswith("apache/kafka:")
    tag = image.split(":", 1)[1]
    pom = KAFKA_POM.read_text(encoding="utf-8")
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert m, "deploy/kafka/pom.xml must define <kafka.version>"
    assert m.group(1) == tag, "local Kafka (pom.xml) and compose image must be the same version"


def test_app_services_depend_on_healthy_infrastructure(
    compose_services: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    for name, spec in app_services.items():
        deps = _depends_on(compose_services[name])
        if spec.get("database") or spec.get("kafka"):
            assert deps.get("postgres") == "service_healthy", name
            assert deps.get("kafka") == "service_healthy", name
            assert deps.get("kafka-init") == "service_completed_successfully", name
            assert deps.get("migrate") == "service_completed_successfully", name
        else:
            # The gateway waits for the services it routes to (which wait for the infrastructure).
            upstreams = set(spec.get("upstreams", {}).values())
            assert upstreams, name
            for target in upstreams:
                assert deps.get(target) == "service_healthy", f"{name} -> {target}"


def test_app_services_have_http_healthchecks(
    compose_services: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    for name, spec in app_services.items():
        hc = compose_services[name].get("healthcheck")
        assert hc and hc.get("test"), f"{name} has no healthcheck"
        test = " ".join(hc["test"]) if isinstance(hc["test"], list) else str(hc["test"])
        assert "curl" not in test, f"{name}: slim images have no curl"
        assert "python" in test, name
        assert f"http://127.0.0.1:{spec['base_port']}/health" in test, name


def test_app_services_build_from_the_one_dockerfile(
    compose_services: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    for name, spec in app_services.items():
        build = compose_services[name].get("build")
        assert isinstance(build, dict), f"{name} must be built"
        assert build.get("context") in (".", "./")
        assert build.get("dockerfile") == "deploy/Dockerfile"
        assert build.get("args", {}).get("SERVICE") == spec["package"], name


def test_app_service_env_agrees_with_services_toml(
    compose_services: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    for name, spec in app_services.items():
        expected = _expected_env(name, spec, app_services)
        actual = _env(compose_services[name])
        assert set(actual) == set(expected), (
            f"{name}: missing {sorted(set(expected) - set(actual))}, unexpected {sorted(set(actual) - set(expected))}"
        )
        for var, value in expected.items():
            if value is not None:
                assert actual[var] == value, f"{name}: {var}={actual[var]!r}, expected {value!r}"


def test_gateway_admin_token_comes_from_the_environment(compose_services: dict[str, Any]) -> None:
    """No default token: compose refuses to start without ADMIN_TOKEN (``${VAR:?message}``)."""
    token = _env(compose_services["gateway"])["GATEWAY_ADMIN_TOKEN"]
    assert re.fullmatch(r"\$\{ADMIN_TOKEN:\?[^}]+\}", token), token


def test_migrate_one_shot_migrates_every_database_before_the_services(
    compose_services: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    migrate = compose_services["migrate"]
    assert migrate.get("restart") == "no"
    assert _depends_on(migrate) == {"postgres": "service_healthy"}
    assert migrate["build"]["dockerfile"] == "deploy/Dockerfile"
    command = " ".join(migrate["command"])
    env = _env(migrate)
    for spec in app_services.values():
        if not spec.get("database"):
            continue
        p = spec["env_prefix"]
        assert f"python -m {spec['package']} migrate" in command
        assert env[f"{p}_DATABASE_URL"] == f"postgresql://postgres:postgres@postgres:5432/{spec['database']}"
        assert env[f"{p}_ENVIRONMENT"] == "production"
        assert env[f"{p}_KAFKA_BOOTSTRAP"] == "kafka:9092"  # the production settings check wants it


def test_seed_one_shot_loads_the_runners_demo_data_once(compose_services: dict[str, Any]) -> None:
    seed = compose_services["seed"]
    assert seed.get("restart") == "no"
    assert _depends_on(seed) == {"gateway": "service_healthy"}
    command = seed["command"]
    assert command[:3] == ["python", "/app/deploy/cluster.py", "seed"]
    assert "--once" in command and "http://gateway:8080" in command
    assert _env(seed)["ADMIN_TOKEN"].startswith("${ADMIN_TOKEN:?")
    assert "deploy" not in DOCKERFILE.with_name("Dockerfile.dockerignore").read_text().split(), (
        "the image has cluster.py"
    )


# --------------------------------------------------------------- topics, databases


def test_topics_agree_between_compose_infra_sh_and_services_toml(
    compose_services: dict[str, Any], topology: dict[str, Any]
) -> None:
    kafka = topology["kafka"]
    init_env = _env(compose_services["kafka-init"])
    compose_topics = init_env["TOPICS"].split()
    assert compose_topics == kafka["topics"]
    assert init_env["PARTITIONS"] == str(kafka["partitions"])
    command = str(compose_services["kafka-init"].get("command"))
    assert "--if-not-exists" in command and "$${TOPICS}" in command and "$${PARTITIONS}" in command

    infra_topics = [line.split() for line in _infra("topics")]
    assert [t for t, _ in infra_topics] == kafka["topics"]
    assert {p for _, p in infra_topics} == {str(kafka["partitions"])}
    assert "num.partitions=@PARTITIONS@" in KAFKA_TEMPLATE.read_text(encoding="utf-8")


def test_databases_agree_between_compose_init_infra_sh_and_services_toml(
    app_services: dict[str, dict[str, Any]],
) -> None:
    wanted = [s["database"] for s in app_services.values() if s.get("database")]
    script = PG_INIT.read_text(encoding="utf-8")
    m = re.search(r'APP_DATABASES="\$\{APP_DATABASES:-([^}]*)\}"', script)
    assert m, "init-databases.sh must define its default database list"
    assert sorted(m.group(1).split()) == sorted(wanted)
    assert os.access(PG_INIT, os.X_OK), "init-databases.sh must be executable"
    assert sorted(_infra("databases")) == sorted(wanted)


# ----------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_the_service_package() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"^ARG SERVICE\b", text, re.MULTILINE)
    assert re.search(r"python -m \$\{?SERVICE\}?", text), "the container must run `python -m ${SERVICE}`"
    assert "-c requirements.lock" in text


def test_observability_profile_is_wired_to_deploy_monitoring(compose_services: dict[str, Any]) -> None:
    for name in OBSERVABILITY_SERVICES:
        assert compose_services[name]["profiles"] == ["observability"], name
    mounts = {
        name: [str(v).split(":")[0] for v in compose_services[name].get("volumes", [])]
        for name in OBSERVABILITY_SERVICES
    }
    for mount in mounts["prometheus"] + mounts["grafana"]:
        assert (ROOT / mount).exists(), mount
    assert "./deploy/monitoring/prometheus/prometheus.yml" in mounts["prometheus"]
    assert "./deploy/monitoring/prometheus/rules" in mounts["prometheus"]
    assert {"./deploy/monitoring/grafana/provisioning", "./deploy/monitoring/grafana/dashboards"} <= set(
        mounts["grafana"]
    )
    assert _env(compose_services["jaeger"])["COLLECTOR_OTLP_ENABLED"] == "true"
