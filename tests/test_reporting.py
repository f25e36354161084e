"""tests/support/reporting.py: a failure whose source pytest cannot quote is reported, and the
session goes on (CPython 3.11's ``ast.parse`` can raise SystemError there; see the plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# pytest's source quoting fails as CPython 3.11's does: a SystemError from the AST step
CONFTEST = """
import _pytest._code.code as code

def broken(*args, **kwargs):
    raise SystemError("AST constructor recursion depth mismatch (before=120, after=170)")

code.getstatementrange_ast = broken
"""

# warnings are errors, as in the project's configuration (pyproject.toml)
INI = """[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

TESTS = """
import pytest

def test_fails():
    assert 1 + 1 == 3, "arithmetic"

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown went wrong")

def test_teardown_fails(broken_teardown):
    pass

def test_after():
    pass
"""


def run(tmp_path: Path, *plugins: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_it.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text(INI)
    options = [arg for plugin in plugins for arg in ("-p", plugin)]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-W",
            "error",  # as the project runs (filterwarnings)
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *options,
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_without_the_plugin_the_session_dies(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr  # INTERNALERROR
    assert "INTERNALERROR" in result.stdout + result.stderr
    assert "AST constructor recursion depth mismatch" in result.stdout + result.stderr


def test_a_failure_pytest_cannot_quote_is_reported_and_the_session_goes_on(tmp_path: Path) -> None:
    result = run(tmp_path, "tests.support.reporting")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr  # tests failed; not an internal error
    assert "INTERNALERROR" not in out + result.stderr
    assert "1 failed, 2 passed, 1 error" in out, out
    assert "AssertionError: arithmetic" in out and "RuntimeError: teardown went wrong" in out, out
    assert "pytest could not quote the source" in out, out
