#!/usr/bin/env bash
# Installs the offline Kubernetes manifest validator used by tests/test_k8s.py:
#
#   .local/bin/kubeconform                       kubeconform, built with `go install` (Go module proxy)
#   .local/k8s-schemas/v<K8S>-standalone-strict/ JSON schemas, converted from the schemas that the
#                                                PyPI package kubernetes-validate ships (its wheel
#                                                is only downloaded, never installed)
#
# kubeconform normally downloads its schemas from GitHub at validation time; with these
# files nothing is fetched while the tests run:
#
#   .local/bin/kubeconform -strict -kubernetes-version "$K8S_VERSION" \
#       -schema-location '.local/k8s-schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
#       -ignore-filename-pattern 'kustomization\.yaml$' deploy/k8s
#
# Idempotent: does nothing when both are already in place (delete .local/bin/kubeconform or
# .local/k8s-schemas to force a reinstall). Needs: go (>= 1.21; it fetches the Go toolchain
# kubeconform requires through the module proxy), python3 with pip (only `pip download`).
set -Eeuo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.."

KUBECONFORM_VERSION="v0.8.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
KUBERNETES_VALIDATE_SHA256="85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
# The Kubernetes version the manifests are validated against (tests/test_k8s.py uses the same).
K8S_VERSION="${K8S_VERSION:-1.33.0}"

LOCAL="$PWD/.local"
BIN="$LOCAL/bin/kubeconform"
SCHEMAS="$LOCAL/k8s-schemas/v${K8S_VERSION}-standalone-strict"
WHEEL_DIR="$LOCAL/cache/pip-downloads"

log() { echo "[install-validator] $*" >&2; }

# ------------------------------------------------------------------ kubeconform
STAMP="$LOCAL/bin/.kubeconform-version"  # `go install` builds report "development" for -v
if [[ -x "$BIN" ]] && [[ "$(cat "$STAMP" 2>/dev/null)" == "$KUBECONFORM_VERSION" ]]; then
    log "kubeconform $KUBECONFORM_VERSION already installed"
else
    command -v go >/dev/null || { log "go is not installed: cannot build kubeconform"; exit 1; }
    log "building kubeconform $KUBECONFORM_VERSION"
    mkdir -p "$LOCAL/bin"
    GOBIN="$LOCAL/bin" GOFLAGS=-mod=mod go install "github.com/yannh/kubeconform/cmd/kubeconform@${KUBECONFORM_VERSION}"
    "$BIN" -v >/dev/null
    echo "$KUBECONFORM_VERSION" >"$STAMP"
fi

# ---------------------------------------------------------------------- schemas
if [[ -f "$SCHEMAS/.complete" ]]; then
    log "schemas for Kubernetes $K8S_VERSION already in place"
    exit 0
fi

if [[ -x "$PWD/.venv/bin/python" ]]; then PY="$PWD/.venv/bin/python"; else PY="$(command -v python3)"; fi
wheel="$WHEEL_DIR/kubernetes_validate-${KUBERNETES_VALIDATE_VERSION}-py3-none-any.whl"
if [[ ! -f "$wheel" ]]; then
    log "downloading kubernetes-validate $KUBERNETES_VALIDATE_VERSION (schemas only)"
    mkdir -p "$WHEEL_DIR"
    req="$(mktemp)"
    trap 'rm -f "$req"' EXIT
    echo "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION} --hash=sha256:${KUBERNETES_VALIDATE_SHA256}" >"$req"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes -r "$req" -d "$WHEEL_DIR"
fi

log "converting schemas for Kubernetes $K8S_VERSION into $SCHEMAS"
# The package's schemas reference a shared /api/_definitions.json by absolute URL, which
# kubeconform would try to fetch over HTTP. Make each top-level kind self-contained instead:
# copy the definitions it (transitively) uses into its own $defs.
"$PY" - "$wheel" "$K8S_VERSION" "$SCHEMAS" <<'PYEOF'
import json
import shutil
import sys
import zipfile
from pathlib import Path

wheel, version, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
REFS = ("/api/_definitions.json#/$defs/", "#/$defs/")  # from a kind's file, within the definitions

with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
    if not names:
        sys.exit(f"kubernetes-validate has no schemas for Kubernetes {version}")
    defs = json.loads(z.read(prefix + "_definitions.json"))["$defs"]

    def rewrite(node, used):
        if isinstance(node, dict):
            out_node = {}
            for key, value in node.items():
                ref = next((r for r in REFS if key == "$ref" and isinstance(value, str) and value.startswith(r)), None)
                if ref is not None:
                    name = value[len(ref):]
                    used.add(name)
                    out_node[key] = "#/$defs/" + name
                else:
                    out_node[key] = rewrite(value, used)
            return out_node
        if isinstance(node, list):
            return [rewrite(item, used) for item in node]
        return node

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count = 0
    for name in names:
        schema = json.loads(z.read(name))
        if name.endswith("/_definitions.json") or "x-kubernetes-group-version-kind" not in schema:
            continue  # only top-level kinds are looked up by kubeconform
        used: set[str] = set()
        schema = rewrite(schema, used)
        closure: dict[str, object] = {}
        todo = list(used)
        while todo:
            d = todo.pop()
            if d in closure:
                continue
            found: set[str] = set()
            closure[d] = rewrite(defs[d], found)
            todo.extend(found - closure.keys())
        schema.pop("$id", None)
        schema["$defs"] = closure
        (tmp / Path(name).name).write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
        count += 1
    (tmp / ".complete").write_text(f"{count}\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"[install-validator] {count} schemas written", file=sys.stderr)
PYEOF
