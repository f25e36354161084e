"""Static checks of the Kubernetes manifests in deploy/k8s against deploy/services.toml.

No cluster runs in CI, so this (a) parses every manifest and checks what the services need
(probes, resources, security context, env var names of the services.toml contract, one
Deployment + Service per service, the gateway behind an Ingress, the Kafka topics Job), the
same way tests/test_compose.py checks docker-compose.yml, and (b) validates every object
against the Kubernetes JSON schemas with kubeconform, offline, when
deploy/k8s/install-validator.sh has installed it (skipped otherwise).
"""

from __future__ import annotations

import json
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
K8S_DIR = ROOT / "deploy" / "k8s"
SERVICES_TOML = ROOT / "deploy" / "services.toml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
SECRET_TEMPLATE = K8S_DIR / "secret.example.yaml"
INSTALL_VALIDATOR = K8S_DIR / "install-validator.sh"

NAMESPACE = "ecommerce"
IMAGE = "ghcr.io/example/ecommerce-order-backend"
CONFIGMAP = "ecommerce-config"
SECRET = "ecommerce-secrets"
# Must agree with K8S_VERSION in deploy/k8s/install-validator.sh.
K8S_VERSION = "1.33.0"
SCHEMA_DIR = ROOT / ".local" / "k8s-schemas"
SCHEMA_LOCATION = str(SCHEMA_DIR) + (
    "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
)

Obj = dict[str, Any]


# --------------------------------------------------------------------- fixtures


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p != KUSTOMIZATION)


@pytest.fixture(scope="module")
def app_services() -> dict[str, dict[str, Any]]:
    with SERVICES_TOML.open("rb") as f:
        return tomllib.load(f)["services"]


@pytest.fixture(scope="module")
def topology() -> dict[str, Any]:
    with SERVICES_TOML.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    """Every Kubernetes object of every manifest (the Secret template included)."""
    out: list[Obj] = []
    for path in _manifest_files():
        with path.open(encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        assert docs, f"{path.name} holds no object"
        for doc in docs:
            assert isinstance(doc, dict), f"{path.name}: every document must be a mapping"
            for field in ("apiVersion", "kind", "metadata"):
                assert field in doc, f"{path.name}: object without {field}"
            assert doc["metadata"].get("name"), f"{path.name}: {doc['kind']} without a name"
            out.append(doc)
    return out


def _by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    found = [o for o in objects if o["kind"] == kind]
    names = [o["metadata"]["name"] for o in found]
    assert len(set(names)) == len(names), f"duplicate {kind} names: {names}"
    return {o["metadata"]["name"]: o for o in found}


@pytest.fixture(scope="module")
def deployments(objects: list[Obj]) -> dict[str, Obj]:
    return _by_kind(objects, "Deployment")


@pytest.fixture(scope="module")
def services(objects: list[Obj]) -> dict[str, Obj]:
    return _by_kind(objects, "Service")


@pytest.fixture(scope="module")
def configmap(objects: list[Obj]) -> dict[str, str]:
    maps = _by_kind(objects, "ConfigMap")
    assert CONFIGMAP in maps
    data = maps[CONFIGMAP].get("data") or {}
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    return data


@pytest.fixture(scope="module")
def secret_template(objects: list[Obj]) -> dict[str, str]:
    secrets = _by_kind(objects, "Secret")
    assert set(secrets) == {SECRET}, "the only Secret is the template in secret.example.yaml"
    return secrets[SECRET].get("stringData") or {}


def _container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def _resolve_env(container: Obj, configmap: dict[str, str], secret: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (source, value): source is "value", "configmap" or "secret" (value from the template)."""
    out: dict[str, tuple[str, str]] = {}
    assert "envFrom" not in container, "use explicit env entries so every variable name is visible"
    for item in container.get("env", []):
        name = item["name"]
        assert name not in out, f"duplicate env var {name}"
        if "value" in item:
            assert isinstance(item["value"], str), f"{name}: env values must be strings"
            out[name] = ("value", item["value"])
            continue
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            cm = ref["configMapKeyRef"]
            assert cm["name"] == CONFIGMAP, name
            assert cm["key"] in configmap, f"{name}: ConfigMap has no key {cm['key']}"
            out[name] = ("configmap", configmap[cm["key"]])
        elif "secretKeyRef" in ref:
            sk = ref["secretKeyRef"]
            assert sk["name"] == SECRET, name
            assert sk["key"] in secret, f"{name}: the Secret template has no key {sk['key']}"
            out[name] = ("secret", secret[sk["key"]])
        else:
            pytest.fail(f"{name}: unexpected valueFrom {ref}")
    return out


# --------------------------------------------------------------------- the files


def test_every_object_lives_in_the_namespace(objects: list[Obj]) -> None:
    namespaces = _by_kind(objects, "Namespace")
    assert set(namespaces) == {NAMESPACE}
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']}"


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    with KUSTOMIZATION.open(encoding="utf-8") as f:
        kustomization = yaml.safe_load(f)
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == NAMESPACE
    resources = kustomization["resources"]
    assert len(set(resources)) == len(resources)
    expected = {p.name for p in _manifest_files()} - {SECRET_TEMPLATE.name}
    assert set(resources) == expected, "kustomization.yaml must list every manifest except the Secret template"
    assert [i["name"] for i in kustomization.get("images", [])] == [IMAGE]


def test_secret_template_holds_placeholders_for_every_secret_the_services_read(
    secret_template: dict[str, str], app_services: dict[str, dict[str, Any]]
) -> None:
    expected = {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}
    for spec in app_services.values():
        p = spec["env_prefix"]
        if spec.get("database"):
            expected.update({f"{p}_DATABASE_URL", f"{p}_MIGRATIONS_DATABASE_URL"})
        expected.update(f"{p}_{extra}" for extra in spec.get("extra_env", []))
    assert set(secret_template) == expected
    text = SECRET_TEMPLATE.read_text(encoding="utf-8")
    assert "kubectl -n ecommerce create secret generic ecommerce-secrets" in text, "say how to create the real one"
    for key in expected:
        assert f"--from-literal={key}=" in text, f"the creation example misses {key}"
    for spec in app_services.values():
        if spec.get("database"):
            for key in ("DATABASE_URL", "MIGRATIONS_DATABASE_URL"):
                url = secret_template[f"{spec['env_prefix']}_{key}"]
                assert url.startswith("postgresql://") and url.endswith(f"/{spec['database']}"), url
                assert "PASSWORD" in url, "the template must hold placeholders, not credentials"


# ------------------------------------------------------------------- Deployments


def test_one_deployment_and_service_per_service(
    deployments: dict[str, Obj], services: dict[str, Obj], app_services: dict[str, dict[str, Any]]
) -> None:
    assert set(deployments) == set(app_services)
    assert set(services) == set(app_services)


def test_deployments_run_the_service_package_from_the_one_image(
    deployments: dict[str, Obj], app_services: dict[str, dict[str, Any]]
) -> None:
    assert re.search(r"python -m \$\{?SERVICE\}?", (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8"))
    for name, spec in app_services.items():
        dep = deployments[name]
        assert dep["spec"]["replicas"] >= 2, f"{name}: the services are designed to run several instances"
        c = _container(dep)
        assert c["image"].split(":")[0] == IMAGE, name
        assert c["command"] == ["python", "-m", spec["package"]], name
        assert c["ports"] == [{"name": "http", "containerPort": spec["base_port"], "protocol": "TCP"}], name
        labels = dep["spec"]["template"]["metadata"]["labels"]
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name
        assert labels["app.kubernetes.io/name"] == name


def test_deployments_have_probes_and_resources(
    deployments: dict[str, Obj], app_services: dict[str, dict[str, Any]]
) -> None:
    for name in app_services:
        c = _container(deployments[name])
        ready, live = c.get("readinessProbe"), c.get("livenessProbe")
        assert ready and live, f"{name}: readiness and liveness probes are required"
        # The gateway's readiness must not depend on the services behind it (one down would take
        # every gateway pod out of the Ingress): it is "this gateway can serve".
        assert ready["httpGet"]["path"] == ("/health/serving" if name == "gateway" else "/health/ready"), name
        assert live["httpGet"]["path"] == "/health", name
        for probe in (ready, live, c.get("startupProbe") or live):
            assert probe["httpGet"]["port"] in ("http", app_services[name]["base_port"]), name
        resources = c.get("resources") or {}
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{name}: resource requests"
        assert {"cpu", "memory"} <= set(resources.get("limits", {})), f"{name}: resource limits"


def test_pods_are_locked_down(objects: list[Obj]) -> None:
    workloads = [o for o in objects if o["kind"] in ("Deployment", "Job")]
    assert workloads
    for obj in workloads:
        name = f"{obj['kind']} {obj['metadata']['name']}"
        pod = obj["spec"]["template"]["spec"]
        psc = pod.get("securityContext") or {}
        assert psc.get("runAsNonRoot") is True, name
        # The Dockerfile's USER is a name: the kubelet can only verify a numeric, non-zero uid.
        assert isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, name
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert pod.get("automountServiceAccountToken") is False, name
        # Service links would inject e.g. ORDER_PORT=tcp://... next to the services' own ORDER_PORT.
        assert pod.get("enableServiceLinks") is False, name
        for c in pod["containers"]:
            csc = c.get("securityContext") or {}
            assert csc.get("allowPrivilegeEscalation") is False, name
            assert csc.get("readOnlyRootFilesystem") is True, name
            assert csc.get("privileged", False) is False, name
            assert csc.get("capabilities", {}).get("drop") == ["ALL"], name
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a writable /tmp next to the read-only root"


OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


def test_tracing_is_off_by_default_and_sampled_when_on(configmap: dict[str, str]) -> None:
    """An empty endpoint leaves tracing off (shared/tracing.py); once an operator sets one, a
    parent-based ratio keeps or drops each order's trace whole."""
    assert configmap["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""
    assert configmap["OTEL_EXPORTER_OTLP_PROTOCOL"] in ("http/protobuf", "grpc")
    assert configmap["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert 0 < float(configmap["OTEL_TRACES_SAMPLER_ARG"]) <= 1


def test_deployment_env_agrees_with_services_toml(
    deployments: dict[str, Obj],
    app_services: dict[str, dict[str, Any]],
    configmap: dict[str, str],
    secret_template: dict[str, str],
) -> None:
    for name, spec in app_services.items():
        p = spec["env_prefix"]
        env = _resolve_env(_container(deployments[name]), configmap, secret_template)
        expected: dict[str, tuple[str, str] | str] = {
            f"{p}_HOST": ("value", "0.0.0.0"),
            f"{p}_PORT": ("value", str(spec["base_port"])),
            f"{p}_ENVIRONMENT": ("configmap", "production"),
        }
        if spec.get("database"):
            expected[f"{p}_DATABASE_URL"] = "secret"
        if spec.get("kafka"):
            expected[f"{p}_KAFKA_BOOTSTRAP"] = ("configmap", configmap["KAFKA_BOOTSTRAP"])
            expected[f"{p}_KAFKA_SECURITY_PROTOCOL"] = ("configmap", configmap["KAFKA_SECURITY_PROTOCOL"])
            expected[f"{p}_KAFKA_SASL_MECHANISM"] = ("configmap", configmap["KAFKA_SASL_MECHANISM"])
            expected[f"{p}_KAFKA_SASL_USERNAME"] = "secret"
            expected[f"{p}_KAFKA_SASL_PASSWORD"] = "secret"
        for otel in OTEL_VARS:  # tracing: the standard variables, from the ConfigMap
            expected[otel] = ("configmap", configmap[otel])
        if spec.get("public"):
            expected[f"{p}_TRUSTED_PROXIES"] = ("configmap", configmap["TRUSTED_PROXIES"])
        for key, target in spec.get("upstreams", {}).items():
            # Service name = hostname, Service port = base port: the same URLs as in compose.
            expected[f"{p}_{key}"] = ("value", f"http://{target}:{app_services[target]['base_port']}")
        for extra in spec.get("extra_env", []):
            expected[f"{p}_{extra}"] = "secret"
        assert set(env) == set(expected), (
            f"{name}: missing {sorted(set(expected) - set(env))}, unexpected {sorted(set(env) - set(expected))}"
        )
        for var, want in expected.items():
            if isinstance(want, str):
                assert env[var][0] == want, f"{name}: {var} must come from the {want}"
            else:
                assert env[var] == want, f"{name}: {var}={env[var]!r}, expected {want!r}"


def test_kafka_bootstrap_is_external(configmap: dict[str, str]) -> None:
    bootstrap = configmap["KAFKA_BOOTSTRAP"]
    assert bootstrap and all(re.fullmatch(r"[\w.-]+:\d+", b.strip()) for b in bootstrap.split(","))


# ---------------------------------------------------------------- Services, Ingress


def test_services_expose_the_base_port(
    services: dict[str, Obj], deployments: dict[str, Obj], app_services: dict[str, dict[str, Any]]
) -> None:
    for name, spec in app_services.items():
        svc = services[name]["spec"]
        assert svc.get("type", "ClusterIP") == "ClusterIP", f"{name}: only the Ingress is public"
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["selector"].items() <= pod_labels.items(), name
        assert svc["ports"] == [{"name": "http", "port": spec["base_port"], "targetPort": "http", "protocol": "TCP"}]


def test_the_public_service_is_behind_an_ingress(
    objects: list[Obj], services: dict[str, Obj], app_services: dict[str, dict[str, Any]]
) -> None:
    public = [name for name, spec in app_services.items() if spec.get("public")]
    assert public == ["gateway"]
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    assert len(ingresses) == 1
    ingress = ingresses[0]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    backends = [path["backend"]["service"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert backends, "the Ingress routes nothing"
    ports = {p["name"]: p["port"] for p in services["gateway"]["spec"]["ports"]}
    for backend in backends:
        assert backend["name"] == "gateway"
        port = backend["port"]
        assert port.get("name") in ports or port.get("number") in ports.values(), port


def test_pod_disruption_budgets_keep_an_instance(objects: list[Obj], deployments: dict[str, Obj]) -> None:
    pdbs = _by_kind(objects, "PodDisruptionBudget")
    assert set(pdbs) == set(deployments)
    for name, pdb in pdbs.items():
        assert pdb["apiVersion"] == "policy/v1"
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert pdb["spec"].get("minAvailable", 0) >= 1, name


# ------------------------------------------------------------------------ topics


def test_topics_job_creates_the_services_toml_topics(
    objects: list[Obj], configmap: dict[str, str], topology: dict[str, Any], secret_template: dict[str, str]
) -> None:
    """One authoritative step with the production settings (the services only check)."""
    kafka = topology["kafka"]
    assert configmap["KAFKA_TOPICS"].split() == kafka["topics"]
    assert configmap["KAFKA_PARTITIONS"] == str(kafka["partitions"])
    replication = int(configmap["KAFKA_REPLICATION_FACTOR"])
    assert replication >= 3, "production topics need replicas"
    assert 1 < int(configmap["KAFKA_MIN_INSYNC_REPLICAS"]) < replication, "acks=all must survive one broker down"
    assert int(configmap["KAFKA_RETENTION_MS"]) >= 24 * 3600 * 1000

    jobs = _by_kind(objects, "Job")
    assert set(jobs) == {"kafka-topics", "db-migrations"}
    c = _container(jobs["kafka-topics"])
    assert c["image"].split(":")[0] == IMAGE
    assert c["command"] == ["python", "-m", "shared.messaging.admin"]
    env = _resolve_env(c, configmap, secret_template)
    for key in (
        "KAFKA_BOOTSTRAP",
        "KAFKA_TOPICS",
        "KAFKA_PARTITIONS",
        "KAFKA_REPLICATION_FACTOR",
        "KAFKA_MIN_INSYNC_REPLICAS",
        "KAFKA_RETENTION_MS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
    ):
        assert env[key] == ("configmap", configmap[key]), key
    resources = c.get("resources") or {}
    assert {"cpu", "memory"} <= set(resources.get("requests", {}))


def test_services_never_create_topics_nor_migrate_in_the_cluster(configmap: dict[str, str]) -> None:
    """ENVIRONMENT=production: the services only check topics and the schema version."""
    from balance_service.config import Settings

    settings = Settings(
        environment=configmap["ENVIRONMENT"],
        database_url="postgresql://u@db/balance",
        kafka_bootstrap=configmap["KAFKA_BOOTSTRAP"],
    )
    assert not settings.creates_topics and not settings.migrates_on_start


def test_migrations_job_runs_each_service_migration_as_the_schema_owner(
    objects: list[Obj],
    app_services: dict[str, dict[str, Any]],
    configmap: dict[str, str],
    secret_template: dict[str, str],
) -> None:
    job = _by_kind(objects, "Job")["db-migrations"]
    containers = {c["name"]: c for c in job["spec"]["template"]["spec"]["containers"]}
    databases = {name: spec for name, spec in app_services.items() if spec.get("database")}
    assert set(containers) == set(databases)
    for name, spec in databases.items():
        c, p = containers[name], spec["env_prefix"]
        assert c["image"].split(":")[0] == IMAGE
        assert c["command"] == ["python", "-m", spec["package"], "migrate"]
        env = _resolve_env(c, configmap, secret_template)
        assert env[f"{p}_DATABASE_URL"] == ("secret", secret_template[f"{p}_MIGRATIONS_DATABASE_URL"])
        ref = next(e for e in c["env"] if e["name"] == f"{p}_DATABASE_URL")["valueFrom"]["secretKeyRef"]
        assert ref["key"] == f"{p}_MIGRATIONS_DATABASE_URL", "its own credentials, not the application's"


def test_images_are_pinned(objects: list[Obj]) -> None:
    with KUSTOMIZATION.open(encoding="utf-8") as f:
        kustomization = yaml.safe_load(f)
    tags = [i.get("newTag") or i.get("digest") for i in kustomization["images"]]
    assert tags and all(t and t != "latest" for t in tags), tags
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                image = c["image"]
                assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


def test_pods_are_scraped_by_prometheus(deployments: dict[str, Obj], app_services: dict[str, dict[str, Any]]) -> None:
    for name, spec in app_services.items():
        annotations = deployments[name]["spec"]["template"]["metadata"].get("annotations") or {}
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == str(spec["base_port"]), name
        assert annotations.get("prometheus.io/path") == "/metrics", name


def test_autoscalers_respect_the_partition_count(
    objects: list[Obj], deployments: dict[str, Obj], app_services: dict[str, dict[str, Any]], topology: dict[str, Any]
) -> None:
    hpas = _by_kind(objects, "HorizontalPodAutoscaler")
    assert set(hpas) == set(deployments)
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert spec["minReplicas"] >= 2
        assert spec["minReplicas"] <= spec["maxReplicas"]
        if app_services[name].get("kafka"):
            # more consumers than partitions would sit idle
            assert spec["maxReplicas"] <= topology["kafka"]["partitions"], name
        assert spec["metrics"], name


def _allowed_sources(policy: Obj) -> tuple[set[str], set[str]]:
    """(pod names, namespace names) that may reach the policy's pods."""
    pods: set[str] = set()
    namespaces: set[str] = set()
    for rule in policy["spec"].get("ingress", []):
        for peer in rule.get("from", []):
            if "podSelector" in peer:
                labels = peer["podSelector"]["matchLabels"]
                assert labels["app.kubernetes.io/part-of"] == "ecommerce-order-backend"
                pods.add(labels["app.kubernetes.io/name"])
            if "namespaceSelector" in peer:
                namespaces.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    return pods, namespaces


def test_network_policies_follow_the_topology(objects: list[Obj], app_services: dict[str, dict[str, Any]]) -> None:
    policies = _by_kind(objects, "NetworkPolicy")
    deny = policies.pop("default-deny-ingress")
    assert deny["spec"]["podSelector"] == {} and deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny["spec"], "deny all ingress by default"
    assert set(policies) == set(app_services)
    callers: dict[str, set[str]] = {name: set() for name in app_services}
    for name, spec in app_services.items():
        for target in spec.get("upstreams", {}).values():
            callers[target].add(name)
    for name, spec in app_services.items():
        policy = policies[name]
        assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
        pods, namespaces = _allowed_sources(policy)
        assert pods == callers[name], f"{name}: reachable from {pods}, topology says {callers[name]}"
        assert "monitoring" in namespaces, f"{name}: Prometheus must reach /metrics"
        if spec.get("public"):
            assert "ingress-nginx" in namespaces
        else:
            assert namespaces == {"monitoring"}, name
        for rule in policy["spec"]["ingress"]:
            assert rule["ports"] == [{"port": spec["base_port"], "protocol": "TCP"}], name


def test_the_ingress_publishes_only_the_api(objects: list[Obj]) -> None:
    """/metrics and /health/* stay inside the cluster."""
    ingress = next(o for o in objects if o["kind"] == "Ingress")
    paths = [(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == [("/api", "Prefix")]


def test_kustomize_renders_every_object(objects: list[Obj], tmp_path: Path) -> None:
    """`kubectl kustomize deploy/k8s` renders the listed objects (the Secret template left out),
    all in the namespace, with the pinned image; the render passes the schema check too."""
    kubectl = shutil.which("kubectl") or shutil.which("kustomize")
    if kubectl is None:
        pytest.skip("neither kubectl nor kustomize is installed")
    command = [kubectl, "kustomize", str(K8S_DIR)] if kubectl.endswith("kubectl") else [kubectl, "build", str(K8S_DIR)]
    rendered = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    expected = sorted((o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] != "Secret")
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == expected
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert not c["image"].endswith(":latest"), c["image"]
    out = tmp_path / "rendered.yaml"
    out.write_text(rendered, encoding="utf-8")
    binary = _kubeconform()
    code, report = _validate(binary, out)
    problems = [r for r in report.get("resources", []) if r.get("status") != "statusValid"]
    assert code == 0 and not problems, json.dumps(problems, indent=2)
    assert report["summary"]["valid"] == len(docs)


def test_readme_explains_the_prerequisites() -> None:
    text = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    for needle in ("kubectl apply -k deploy/k8s", "ecommerce-secrets", "kafka-topics", "install-validator.sh"):
        assert needle in text, needle
    assert os.access(INSTALL_VALIDATOR, os.X_OK), "install-validator.sh must be executable"
    assert f'K8S_VERSION="${{K8S_VERSION:-{K8S_VERSION}}}"' in INSTALL_VALIDATOR.read_text(encoding="utf-8")


# ----------------------------------------------------------------- schema check


def _kubeconform() -> str:
    local = ROOT / ".local" / "bin" / "kubeconform"
    binary = str(local) if os.access(local, os.X_OK) else shutil.which("kubeconform")
    if binary is None:
        pytest.skip("kubeconform is not installed: run deploy/k8s/install-validator.sh")
    if not (SCHEMA_DIR / f"v{K8S_VERSION}-standalone-strict" / ".complete").is_file():
        pytest.skip(
            f"no offline Kubernetes {K8S_VERSION} schemas under .local/k8s-schemas: run deploy/k8s/install-validator.sh"
        )
    return binary


def _validate(binary: str, *paths: Path) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [
            binary,
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            K8S_VERSION,
            "-schema-location",
            SCHEMA_LOCATION,
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"kubeconform printed no JSON report: {result.stdout}{result.stderr}")
    return result.returncode, report


def test_manifests_match_the_kubernetes_schemas(objects: list[Obj]) -> None:
    binary = _kubeconform()
    code, report = _validate(binary, *_manifest_files())
    problems = [r for r in report.get("resources", []) if r.get("status") != "statusValid"]
    assert code == 0 and not problems, json.dumps(problems, indent=2)
    summary = report["summary"]
    assert summary["valid"] == len(objects), f"validated {summary}, parsed {len(objects)} objects"
    assert summary["skipped"] == 0


def test_the_schema_check_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """Guards against a validator that passes everything (missing or non-strict schemas)."""
    binary = _kubeconform()
    broken = tmp_path / "broken.yaml"
    with (K8S_DIR / "gateway.yaml").open(encoding="utf-8") as f:
        deployment = next(d for d in yaml.safe_load_all(f) if d and d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {"httpGet": {"path": "/health"}}
    deployment["spec"]["replicas"] = "two"
    broken.write_text(yaml.safe_dump(deployment), encoding="utf-8")
    code, report = _validate(binary, broken)
    assert code != 0
    assert report["summary"]["invalid"] == 1, report
    message = report["resources"][0]["msg"]
    assert "livenessprobe" in message and "replicas" in message, message
