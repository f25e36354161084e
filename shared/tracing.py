"""OpenTelemetry tracing: one trace per order, across HTTP, the outboxes and Kafka.

Configured by the standard ``OTEL_*`` variables and on only when an exporter is configured:
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (OTLP, protocol from
``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf`` by default, or ``grpc``), or
``OTEL_TRACES_EXPORTER=otlp|console``; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``
switch it off. Sampling, batching, resource attributes and the service name follow the SDK's own
variables (``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_SERVICE_NAME``, default: the service's name).

Off (the default), nothing is installed: no SDK, no instrumentation, no middleware; the hooks
below cost one module-level boolean test each (per outgoing message header set, per consumed
batch, per record sent, per request id), so tracing off costs nothing measurable.

On, the real instrumentations trace aiohttp (server middleware, client sessions: W3C
``traceparent`` between processes), asyncpg and aiokafka. What they cannot see is the outbox: a
message is written in one transaction and published later by the relay. So:

- :func:`message_headers` adds the W3C context to a message's headers when it is written to the
  outbox (stored in the row's ``headers``): the context of the consumed message with the same
  key (saga commands and replies are keyed by order id) when a batch is being handled, else the
  current span (an HTTP request), else a context saved earlier (the saga's, for re-sends after a
  timeout);
- :func:`sending` makes that stored context the parent while the relay hands the record to the
  producer, whose instrumentation then sends a ``send`` span's ``traceparent`` header;
- :func:`consuming` opens a ``process`` span per consumed record, a child of the context its
  headers carry, with the request id, event type and order key as attributes, and a ``batch`` span
  (linked to them) around the handler, so the database spans of the batch nest under it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from shared.messaging.envelope import Incoming

log = logging.getLogger(__name__)

ENABLED = False
"""True once :func:`configure` installed an exporter in this process."""

TRACE_HEADERS = ("traceparent", "tracestate")
_NULL = contextlib.nullcontext()
_BY_KEY: ContextVar[dict[str, otel_context.Context] | None] = ContextVar("trace_by_key", default=None)
_tracer: trace.Tracer = trace.get_tracer("shared.tracing")


def _exporter_configured(env: dict[str, str]) -> str | None:
    """``"otlp"``, ``"console"`` or ``None`` (off) from the standard variables."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen == "none":
        return None
    if chosen in {"otlp", "console"}:
        return chosen
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return "otlp"
    return None


def _exporter(kind: str, env: dict[str, str]) -> Any:
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def configure(service: str, instance_id: str, env: dict[str, str] | None = None) -> bool:
    """Install the SDK, the exporter and the instrumentations when an exporter is configured
    (once per process; later calls return the first answer)."""
    global ENABLED, _tracer
    if ENABLED or getattr(configure, "_done", False):
        return ENABLED
    configure._done = True  # type: ignore[attr-defined]
    env = dict(os.environ if env is None else env)
    kind = _exporter_configured(env)
    if kind is None:
        return False
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # probes and scrapes are not worth a trace each
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS", "/health,/metrics")
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_CLIENT_EXCLUDED_URLS", "/health")
    attributes = {"service.name": env.get("OTEL_SERVICE_NAME") or service, "service.instance.id": instance_id}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(kind, env)))
    trace.set_tracer_provider(provider)
    AioHttpServerInstrumentor().instrument()
    AioHttpClientInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    AIOKafkaInstrumentor().instrument()
    _tracer = trace.get_tracer("shared.tracing")
    ENABLED = True
    log.info("tracing on", extra={"exporter": kind, "service": attributes["service.name"]})
    return True


SHUTDOWN_BOUND_S = 5.0
"""How long a stopping process waits for its buffered spans to be exported. The SDK's own bound is
30 s per processor, retrying an unreachable collector all along: longer than an orchestrator's
grace period (Kubernetes: 30 s in all), so a service whose collector is down would be SIGKILLed on
every stop, and the local runner's ``down`` waited that long per process."""


def shutdown(provider: Any = None, bound_s: float = SHUTDOWN_BOUND_S) -> None:
    """Flush the spans still buffered (at process exit), waiting ``bound_s`` at most; spans not
    exported by then are dropped, with a warning."""
    provider = provider if provider is not None else trace.get_tracer_provider()
    if not ENABLED or not hasattr(provider, "shutdown"):
        return
    flusher = threading.Thread(target=provider.shutdown, name="tracing-shutdown", daemon=True)
    flusher.start()
    flusher.join(bound_s)
    if flusher.is_alive():  # a daemon thread: it does not hold up the exit
        log.warning("tracing: spans not exported within %.0f s of shutdown were dropped", bound_s)


# --- HTTP ----------------------------------------------------------------------------------------


def tag_request(request_id: str) -> None:
    """The request id as an attribute of the current (server) span."""
    if ENABLED:
        trace.get_current_span().set_attribute("request.id", request_id)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to save with state that outlives it."""
    if not ENABLED:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


# --- messages through the outbox ----------------------------------------------------------------


def message_headers(key: str, saved: str | None = None) -> dict[str, str]:
    """The trace headers of a message about to be written to the outbox (see the module doc)."""
    if not ENABLED:
        return {}
    carrier: dict[str, str] = {}
    by_key = _BY_KEY.get()
    parent = by_key.get(key) if by_key else None
    if parent is not None:
        propagate.inject(carrier, context=parent)
    elif trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    elif saved:
        carrier["traceparent"] = saved
    return carrier


@contextlib.contextmanager
def _parent_of(headers: list[tuple[str, bytes]]) -> Iterator[None]:
    stored = {k: v.decode() for k, v in headers if k in TRACE_HEADERS and v is not None}
    headers[:] = [(k, v) for k, v in headers if k not in TRACE_HEADERS]
    token = otel_context.attach(propagate.extract(stored)) if stored else None
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)


def sending(headers: list[tuple[str, bytes]]) -> contextlib.AbstractContextManager[None]:
    """Around ``producer.send``: the stored context (taken out of ``headers``) is the parent of the
    producer's ``send`` span, whose ``traceparent`` the instrumentation adds to the record."""
    return _parent_of(headers) if ENABLED else _NULL


@contextlib.contextmanager
def _consuming(group: str, items: Sequence[Incoming]) -> Iterator[None]:
    spans = []
    by_key: dict[str, otel_context.Context] = {}
    for item in items:
        parent = propagate.extract(item.headers)
        span = _tracer.start_span(
            f"{item.topic} process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": item.topic,
                "messaging.consumer.group.name": group,
                "messaging.kafka.message.key": item.key or "",
                "messaging.kafka.offset": item.offset,
                "messaging.destination.partition.id": str(item.partition),
                "messaging.message.id": str(item.event_id),
                "event.type": item.message.event_type,
                "request.id": item.request_id or "",
            },
        )
        spans.append(span)
        if item.key is not None:
            by_key[item.key] = trace.set_span_in_context(span)
    links = [trace.Link(span.get_span_context()) for span in spans]
    token = _BY_KEY.set(by_key)
    try:
        with _tracer.start_as_current_span(
            f"{group} batch", links=links, attributes={"messaging.batch.message_count": len(items)}
        ):
            yield
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        _BY_KEY.reset(token)
        for span in spans:
            span.end()


def consuming(group: str, items: Sequence[Incoming]) -> contextlib.AbstractContextManager[None]:
    """Around a consumer's batch handler (see the module doc)."""
    return _consuming(group, items) if ENABLED else _NULL
