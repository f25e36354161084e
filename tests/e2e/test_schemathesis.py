"""schemathesis (property-based, from the OpenAPI document) against the whole cluster through the
gateway, every check, with a fixed seed: a schema-valid request is accepted, an invalid one is
refused with a 4xx, every answer matches the documented statuses, headers and schemas, never a 5xx.

The CI budget is ``SCHEMATHESIS_MAX_EXAMPLES`` (default 10 per operation, about a minute). A longer
run against a running cluster (``deploy/run.sh``; its URL and admin token are printed):

    SCHEMATHESIS_HOOKS=tests.e2e.st_hooks .venv/bin/schemathesis run \\
        http://127.0.0.1:8080/api/docs/openapi.json --checks all --seed 2 --max-examples 200 \\
        -H "X-Admin-Token: $TOKEN" --workers 1 --generation-database none

or this test with ``SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_SEED=2``. The hooks in
``tests/e2e/st_hooks.py`` apply the rules across fields that OpenAPI cannot express (documented on
the operations). The e2e cluster runs without the gateway's rate limit; with one, a 429 is a
documented answer and passes, but the run tests less.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "1"))


@pytest.mark.timeout(1800)
def test_schemathesis_finds_no_failure_through_the_gateway(cluster: Cluster) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{cluster.gateway}/api/docs/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "-H",
        f"X-Admin-Token: {cluster.admin_token}",
        # one worker: with two threads, CPython 3.11's ast.parse (which hypothesis calls to describe
        # its filters) can fail with "SystemError: AST constructor recursion depth mismatch" when
        # both threads parse at once (python/cpython#106905), failing the run as a runtime error
        # with no finding (seen in a fresh-clone run); a single thread never meets it
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",  # the seed alone decides what runs, in CI as locally
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.st_hooks", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=1700, cwd=ROOT, env=env)
    report = result.stdout[-12000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert selected and tested and int(tested.group(1)) == int(selected.group(2)) >= 18, report
    cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert cases and int(cases.group(2)) >= 18 * MAX_EXAMPLES, report
