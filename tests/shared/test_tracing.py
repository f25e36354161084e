"""shared.tracing: when it switches on, and how the trace context crosses the outbox and Kafka
(an SDK tracer with an in-memory exporter, local to the test: the process-wide provider stays unset)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import tracing
from shared.events.saga import DeductBalance
from shared.messaging.envelope import Incoming, Outgoing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, None),
    ],
)
def test_on_only_when_an_exporter_is_configured(env: dict[str, str], expected: str | None) -> None:
    assert tracing._exporter_configured(env) == expected


def test_off_adds_nothing_anywhere() -> None:
    assert not tracing.ENABLED  # no OTEL_* exporter in the test environment
    out = Outgoing("t", "k", DeductBalance(order_id=str(uuid.uuid4()), user_id=1, amount=1), "rid", PARENT)
    assert "traceparent" not in out.headers()
    assert tracing.message_headers("k") == {} and tracing.current_traceparent() is None
    headers = [("traceparent", PARENT.encode())]
    with tracing.sending(headers):
        pass
    assert headers == [("traceparent", PARENT.encode())]  # relayed untouched
    assert tracing.consuming("g", []) is tracing.consuming("h", [])  # one shared no-op context


@pytest.fixture()
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "ENABLED", True)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield exporter


def incoming(key: str, traceparent: str | None) -> Incoming:
    headers = {"traceparent": traceparent} if traceparent else {}
    msg = DeductBalance(order_id=key, user_id=1, amount=1)
    return Incoming("saga.balance.commands", 0, 7, key, msg, "req-1", headers)


def test_a_consumed_batch_parents_each_message_and_what_it_causes_by_key(spans: InMemorySpanExporter) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    with tracing.consuming("balance-saga", [incoming(a, PARENT), incoming(b, other)]):
        reply_a = Outgoing("saga.replies", a, DeductBalance(order_id=a, user_id=1, amount=1)).headers()
        reply_b = Outgoing("saga.replies", b, DeductBalance(order_id=b, user_id=1, amount=1)).headers()
    process = [s for s in spans.get_finished_spans() if s.name.endswith("process")]
    assert len(process) == 2
    by_trace = {format(s.context.trace_id, "032x"): s for s in process}
    first = by_trace["0af7651916cd43dd8448eb211c80319c"]
    assert format(first.parent.span_id, "016x") == "b7ad6b7169203331"
    assert first.attributes["request.id"] == "req-1" and first.attributes["event.type"] == "DeductBalance"
    assert first.kind is trace.SpanKind.CONSUMER
    # the reply of each message is a child of that message's process span
    assert reply_a["traceparent"].split("-")[1:3] == [
        "0af7651916cd43dd8448eb211c80319c",
        format(first.context.span_id, "016x"),
    ]
    assert reply_b["traceparent"].split("-")[1] == "11111111111111111111111111111111"
    batch = next(s for s in spans.get_finished_spans() if s.name == "balance-saga batch")
    assert {format(link.context.span_id, "016x") for link in batch.links} == {
        format(s.context.span_id, "016x") for s in process
    }


def test_a_saved_context_is_the_parent_when_nothing_is_current(spans: InMemorySpanExporter) -> None:
    out = Outgoing("t", "k", DeductBalance(order_id=str(uuid.uuid4()), user_id=1, amount=1), None, PARENT)
    assert out.headers()["traceparent"] == PARENT


def test_the_relay_sends_under_the_stored_context_and_drops_the_stored_header(spans: InMemorySpanExporter) -> None:
    headers = [("event-type", b"X"), ("traceparent", PARENT.encode())]
    with tracing.sending(headers):
        current = trace.get_current_span().get_span_context()
        assert format(current.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert headers == [("event-type", b"X")]  # the producer's instrumentation adds its own
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_failing_handler_marks_the_message_spans(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), tracing.consuming("g", [incoming(str(uuid.uuid4()), PARENT)]):
        raise RuntimeError("boom")
    process = next(s for s in spans.get_finished_spans() if s.name.endswith("process"))
    assert process.status.status_code is trace.StatusCode.ERROR and process.events[0].name == "exception"


class StuckExporter(SpanExporter):
    """An exporter whose collector never answers (until released)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        return SpanExportResult.FAILURE


def one_span_buffered(exporter: SpanExporter, monkeypatch: pytest.MonkeyPatch, delay_ms: int) -> TracerProvider:
    """Tracing on with a batching provider over ``exporter``, one span ended (handed to the batch)."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay_ms))
    monkeypatch.setattr(tracing, "ENABLED", True)
    with provider.get_tracer("test").start_as_current_span("buffered"):
        pass
    return provider


def test_shutdown_waits_a_bounded_time_for_a_collector_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = StuckExporter()
    provider = one_span_buffered(exporter, monkeypatch, delay_ms=10)
    assert exporter.entered.wait(10)  # the export is under way, and stuck
    try:
        with caplog.at_level(logging.WARNING, logger="shared.tracing"):
            tracing.shutdown(provider, bound_s=0.1)  # returns; the SDK alone would wait up to 30 s
        assert "dropped" in caplog.text
    finally:
        exporter.release.set()


def test_shutdown_flushes_what_is_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = one_span_buffered(exporter, monkeypatch, delay_ms=60_000)
    assert not exporter.get_finished_spans()  # still in the batch
    tracing.shutdown(provider)
    assert [s.name for s in exporter.get_finished_spans()] == ["buffered"]
