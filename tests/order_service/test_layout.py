"""The service's shape: SQL only in ``db/``, one application key (``bootstrap.DEPS``)."""

from __future__ import annotations

import re
from pathlib import Path

import order_service

ROOT = Path(order_service.__file__).parent
SQL = re.compile(r"\b(SELECT\s+\S|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|FOR\s+UPDATE)\b")


def _sources(*, under_db: bool) -> list[Path]:
    return [p for p in ROOT.rglob("*.py") if (p.relative_to(ROOT).parts[0] == "db") == under_db]


def test_sql_lives_in_db_only() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _sources(under_db=False) if SQL.search(p.read_text())]
    assert offenders == []
    assert any(SQL.search(p.read_text()) for p in _sources(under_db=True))


def test_one_app_key_defined_in_bootstrap() -> None:
    defining = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if "web.AppKey(" in p.read_text()]
    assert defining == ["bootstrap.py"]
