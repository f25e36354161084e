"""One trace per order: a private cluster exports its spans over OTLP/HTTP to a receiver this test
runs; one order placed through the gateway yields one trace that covers every process, with every
parent link intact (the services are separate processes, so an in-process exporter would not do)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.conftest import Api, Cluster, eventually, running_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SERVICES = {"gateway", "order", "coupon", "balance", "catalog", "ranking"}


class Receiver:
    """An OTLP/HTTP trace receiver (``POST /v1/traces``, protobuf) keeping every span it gets."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: (a.value.string_value or a.value.int_value) for a in span.attributes}
                    found.append(
                        {
                            "service": resource.get("service.name"),
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "kind": span.kind,
                            "attributes": attributes,
                        }
                    )
        with self._lock:
            self.spans.extend(found)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]

    def find(self, **attributes: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.spans if all(s["attributes"].get(k) == v for k, v in attributes.items())]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture(scope="module")
def traced(receiver: Receiver) -> Iterator[Cluster]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    with running_cluster(*(arg for k, v in env.items() for arg in ("--env", f"{k}={v}"))) as cluster:
        yield cluster


@pytest.mark.asyncio
async def test_one_order_is_one_trace_across_every_service(traced: Cluster, receiver: Receiver) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = Api(session, traced)
        user = await api.user(balance=50_000)
        product = await api.product(price=5_000, stock=5)
        coupon = await api.coupon(discount_type="FIXED", discount_value=1_000, total_quantity=5)
        user_coupon = await api.issue(coupon, user)
        request_id = f"trace-{uuid.uuid4().hex[:12]}"
        status, order, _ = await api.call(
            "POST",
            "/api/v1/orders",
            {
                "user_id": user,
                "items": [{"product_id": product, "quantity": 1}],
                "user_coupon_id": user_coupon,
            },
            headers={"X-Request-ID": request_id},
        )
        assert status == 201, order

    async def the_trace() -> list[dict[str, Any]] | None:
        roots = [s for s in receiver.find(**{"request.id": request_id}) if s["service"] == "gateway"]
        if not roots:
            return None
        spans = receiver.trace(roots[0]["trace_id"])
        covered = {s["service"] for s in spans}
        ids = {s["span_id"] for s in spans}
        linked = all(not s["parent"] or s["parent"] in ids for s in spans)
        ranked = any(s["service"] == "ranking" and s["name"].endswith("order.completed process") for s in spans)
        return spans if covered >= SERVICES and linked and ranked else None

    spans = await eventually(the_trace, timeout=60)
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if not s["parent"]]
    assert len(roots) == 1 and roots[0]["service"] == "gateway", roots
    assert all(s["parent"] in ids for s in spans if s["parent"])
    # every saga command and reply went through an outbox and Kafka within the trace
    processed = {(s["service"], s["attributes"].get("event.type")) for s in spans if s["name"].endswith(" process")}
    assert {
        ("coupon", "ReserveCoupon"),
        ("balance", "DeductBalance"),
        ("catalog", "DeductStock"),
        ("order", "CouponReserved"),
        ("order", "BalanceDeducted"),
        ("order", "StockDeducted"),
        ("ranking", "OrderCompleted"),
    } <= processed, processed
    assert all(s["attributes"].get("request.id") == request_id for s in spans if s["name"].endswith(" process"))
    assert any(s["service"] == "order" and s["attributes"].get("request.id") == request_id for s in spans)
