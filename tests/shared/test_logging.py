"""The JSON log line: fields, extras, request id and the per-second timestamp cache."""

from __future__ import annotations

import logging

import orjson

from shared.logging import JsonFormatter


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("access", logging.INFO, __file__, 1, "GET %s %s", ("/x", 200), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.__dict__.update(extra)
    return record


def test_a_line_has_the_fields_and_extras_and_no_caller_or_thread_attributes() -> None:
    line = orjson.loads(JsonFormatter("gateway", "g-0").format(_record(0.5, request_id="r-1", status=200)))
    assert line == {
        "ts": "1970-01-01T00:00:00.500Z",
        "level": "INFO",
        "service": "gateway",
        "instance": "g-0",
        "logger": "access",
        "message": "GET /x 200",
        "request_id": "r-1",
        "status": 200,
    }


def test_the_cached_second_changes_with_the_record_time() -> None:
    formatter = JsonFormatter("s", "i")
    stamps = [orjson.loads(formatter.format(_record(t)))["ts"] for t in (59.25, 59.75, 60.0, 3661.125, 59.5)]
    assert stamps == [
        "1970-01-01T00:00:59.250Z",
        "1970-01-01T00:00:59.750Z",
        "1970-01-01T00:01:00.000Z",
        "1970-01-01T01:01:01.125Z",
        "1970-01-01T00:00:59.500Z",
    ]
