"""Request-scoped context that follows a request through logs and messages."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request (or message) being handled, if any."""
    return request_id_var.get()
