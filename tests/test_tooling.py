"""The developer gates: deploy/test.sh and the pre-commit hooks run the same pinned tools."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _hooks() -> list[dict[str, object]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_the_pre_commit_config_is_valid() -> None:
    result = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_hook_runs_a_tool_that_the_venv_has() -> None:
    for hook in _hooks():
        tool = str(hook["entry"]).split()[0]
        assert tool.startswith(".venv/bin/"), hook
        assert (BIN / Path(tool).name).exists(), f"{tool} is not installed by deploy/venv.sh"


def test_the_hooks_and_the_test_command_run_the_same_gates() -> None:
    script = (ROOT / "deploy" / "test.sh").read_text()
    gates = set(re.findall(r"^\s+\.venv/bin/(ruff check|ruff format|mypy)", script, re.MULTILINE))
    hooked = {" ".join(str(h["entry"]).split()[:2]).removeprefix(".venv/bin/") for h in _hooks()}
    hooked = {h if h.startswith("ruff") else h.split()[0] for h in hooked}
    assert gates == {"ruff check", "ruff format", "mypy"}
    assert gates <= hooked


def test_the_pinned_tool_versions_are_the_locked_ones() -> None:
    locked = dict(line.split("==", 1) for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line)
    for tool in ("ruff", "mypy"):
        out = subprocess.run([str(BIN / tool), "--version"], capture_output=True, text=True, timeout=60).stdout
        assert locked[tool] in out, (tool, out)
