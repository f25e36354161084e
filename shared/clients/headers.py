"""Request headers every client sends: the request id, so the callee's logs carry it on."""

from __future__ import annotations

from shared.context import current_request_id


def request_headers() -> dict[str, str]:
    rid = current_request_id()
    return {"X-Request-ID": rid} if rid else {}


__all__ = ["request_headers"]
