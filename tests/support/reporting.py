"""A pytest plugin (loaded by tests/conftest.py): a failure is always reported, never a crash.

CPython 3.11 can raise ``SystemError: AST constructor recursion depth mismatch`` from
``ast.parse`` (python/cpython#106905, fixed in later releases), and pytest parses a test's source
to quote it when it formats a failure. The error then escapes the report hook and ends the whole
session as an INTERNALERROR: the failure that caused it, every failure before it and every test
after it go unreported (a CI run ended so, 629 tests into 1,112, after two failures it never
named). Here, a report that cannot be formatted is formatted again as Python's own traceback
("native"), failing that as one line per frame ("line", which quotes no source), and the session
goes on and says what failed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from _pytest.reports import TestReport

FALLBACK_STYLES = ("native", "line")


# innermost (trylast): the error is caught before another plugin's wrapper (hypothesis') sees it and
# turns it into a PluggyTeardownRaisedWarning, an error of its own under ``filterwarnings = error``
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    try:
        return (yield)
    except SystemError as error:
        return plain_report(item, call, error)


def plain_report(item: pytest.Item, call: pytest.CallInfo[None], error: SystemError) -> TestReport:
    option = item.config.option
    style = getattr(option, "tbstyle", "auto")
    try:
        for fallback in FALLBACK_STYLES:
            option.tbstyle = fallback
            try:
                report = TestReport.from_item_and_call(item, call)
            except SystemError:
                if fallback == FALLBACK_STYLES[-1]:
                    raise
                continue
            report.sections.append(
                ("report", f"pytest could not quote the source ({error}); traceback as '{fallback}'")
            )
            return report
    finally:
        option.tbstyle = style
    raise AssertionError("unreachable")
