"""The in-repo docs and the served OpenAPI document agree, and the document is as strict as the server.

The merged document is built in-process exactly as the gateway builds it (each service's document,
then ``gateway.docs.merge``), so these run without a cluster; the e2e schemathesis test checks the
served one against the running services.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.config import SERVICES
from gateway.docs import merge
from shared.events.orders import PUBLIC_TOPICS
from shared.web.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"
EVENTS_MD = ROOT / "docs" / "events.md"
METHODS = ("get", "post", "put", "patch", "delete")


def documented_routes() -> set[tuple[str, str]]:
    """``(method, path)`` of every route named in docs/api.md's tables."""
    found = re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/api/v1/[^`?\s]+)", API_MD.read_text())
    return {(method.lower(), path) for method, path in found}


def _settings_class(service: str) -> type:
    module = importlib.import_module(f"{service}_service.config")
    return module.Settings


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    documents = {}
    for service in SERVICES:
        app = importlib.import_module(f"{service}_service.app").create_app(_settings_class(service)())
        documents[service] = openapi_document(app)
    return merge(documents)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items() if method in METHODS
    ]


def test_every_served_route_is_in_docs_api_md(spec: dict[str, Any]) -> None:
    served = {(method, path) for method, path, _ in operations(spec)}
    assert served - documented_routes() == set()


def test_every_route_of_docs_api_md_is_served(spec: dict[str, Any]) -> None:
    served = {(method, path) for method, path, _ in operations(spec)}
    assert documented_routes() - served == set()


def test_operation_ids_are_present_and_unique(spec: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in operations(spec)]
    assert all(ids) and len(ids) == len(set(ids)), ids


def test_admin_operations_use_the_admin_token_scheme(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["adminToken"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-Admin-Token", "description": scheme["description"]}
    for _, path, op in operations(spec):
        admin = path.startswith("/api/v1/admin/")
        assert (op.get("security") == [{"adminToken": []}]) is admin, path
        assert ("401" in op["responses"]) is admin, path
        assert "X-Admin-Token" not in {p["name"] for p in op.get("parameters", [])}, path


def test_path_parameters_are_bounded(spec: dict[str, Any]) -> None:
    for _, path, op in operations(spec):
        for param in op.get("parameters", []):
            if param["in"] != "path":
                continue
            schema = param["schema"]
            if param["name"] == "order_id":
                assert schema["format"] == "uuid" and schema["maxLength"] == 36, path
            elif param["name"] == "dead_letter_id":
                assert schema["pattern"] == "^[a-z][a-z0-9_]{0,31}-[0-9]{1,18}$", path
            else:
                assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 2**63 - 1), path


def test_every_operation_lists_what_the_gateway_can_answer(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        statuses = set(op["responses"])
        assert {"400", "429", "502", "503", "504"} <= statuses, (method, path, statuses)
        assert ("413" in statuses) is (method in {"post", "patch", "put"}), (method, path)


def _codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"]["application/problem+json"]["schema"]
    return next(part["properties"]["code"]["enum"] for part in schema["allOf"] if "properties" in part)


def test_error_codes_are_enums_and_headers_are_declared(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            assert "X-Request-ID" in response["headers"], (method, path, status)
            assert ("Retry-After" in response["headers"]) is (status in {"429", "503"}), (method, path, status)
            if int(status) >= 400:
                assert _codes(response), (method, path, status)
    place = spec["paths"]["/api/v1/orders"]["post"]["responses"]
    assert "Location" in place["201"]["headers"] and "Location" in place["202"]["headers"]
    assert _codes(spec["paths"]["/api/v1/users/{user_id}"]["get"]["responses"]["404"]) == ["USER_NOT_FOUND"]
    assert set(_codes(spec["paths"]["/api/v1/admin/products"]["post"]["responses"]["401"])) == {"UNAUTHORIZED"}
    assert "UPSTREAM_FAILED" in _codes(place["502"]) and "SERVICE_UNAVAILABLE" in _codes(place["503"])


def test_the_order_failure_problem_declares_its_members(spec: dict[str, Any]) -> None:
    failed = spec["paths"]["/api/v1/orders"]["post"]["responses"]["409"]
    assert failed["content"]["application/problem+json"]["schema"]["allOf"][0]["$ref"].endswith("/OrderFailedProblem")
    members = spec["components"]["schemas"]["OrderFailedProblem"]["properties"]
    assert members["order_status"]["enum"] == ["FAILED"] and members["order_id"]["type"] == "string"
    assert {
        "INSUFFICIENT_BALANCE",
        "OUT_OF_STOCK",
        "COUPON_UNAVAILABLE",
        "PRODUCT_NOT_SELLABLE",
        "PAYMENT_TIMEOUT",
        "PROCESSING_FAILED",
    } <= set(_codes(failed))
    failure_code = spec["components"]["schemas"]["OrderOut"]["properties"]["failure_code"]
    assert failure_code["nullable"] is True and failure_code["enum"][-1] is None
    assert set(failure_code["enum"][:-1]) <= set(_codes(failed))


def test_query_and_header_parameters_declare_their_formats(spec: dict[str, Any]) -> None:
    cursors = [
        (path, p["schema"])
        for _, path, op in operations(spec)
        for p in op.get("parameters", [])
        if p["name"] == "cursor"
    ]
    assert len(cursors) >= 4 and all(schema.get("pattern") for _, schema in cursors), cursors
    keys = [
        p["schema"] for _, _, op in operations(spec) for p in op.get("parameters", []) if p["name"] == "Idempotency-Key"
    ]
    assert len(keys) == 2 and all((k["minLength"], k["maxLength"]) == (1, 255) for k in keys)
    coupon = spec["components"]["schemas"]["CreateCoupon"]
    assert "issue_ends_at" in coupon["description"] and coupon["properties"]["discount_value"]["maximum"] == 2**63 - 1
    assert "RANKING_BATCH_CATCH_UP_DAYS" in spec["paths"]["/api/v1/admin/rankings/rebuild"]["post"]["description"]


def test_readme_links_to_the_in_repo_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/api.md)" in readme and "](docs/events.md)" in readme
    assert "../shared/contract" not in readme


def test_docs_events_md_covers_every_public_topic_and_links_its_schemas() -> None:
    text = EVENTS_MD.read_text()
    for topic in PUBLIC_TOPICS:
        assert f"`{topic}`" in text and f"events/{topic}.schema.json" in text
        assert (ROOT / "docs" / "events" / f"{topic}.schema.json").exists()
    assert "events/asyncapi.json" in text
