"""``python -m <service> [serve|migrate]``: the common command line of every service."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from shared import tracing
from shared.config import BaseServiceSettings
from shared.web.app import JsonAccessLogger, access_logger

S = TypeVar("S", bound=BaseServiceSettings)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on unsupported platforms
        return
    uvloop.install()


# Pending connections the kernel queues before accept (capped by net.core.somaxconn). aiohttp's
# default of 128 overflows when a spike of clients connects at once: the dropped SYNs are retried
# by the clients after 1 s, 3 s, 7 s, which shows up as multi-second latencies.
LISTEN_BACKLOG = 4096


def serve(app: web.Application, settings: BaseServiceSettings) -> None:
    """Run the app until SIGINT/SIGTERM, then close every resource in reverse order."""
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=access_logger(settings),
        access_log_class=JsonAccessLogger,
        print=None,
        shutdown_timeout=5.0,
        backlog=LISTEN_BACKLOG,
    )
    tracing.shutdown()  # flush the spans still buffered (nothing when tracing is off)


def _problems(exc: ValidationError) -> str:
    """What is wrong, without the input values (they may hold secrets: DSNs, tokens)."""
    return "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] if e["loc"] else e["msg"] for e in exc.errors())


def main(
    settings_cls: type[S],
    create_app: Callable[[S], web.Application],
    migrate: Callable[[S], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Parse the command line and either serve or apply migrations."""
    parser = argparse.ArgumentParser(prog=f"python -m {create_app.__module__.split('.')[0]}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    try:
        settings = settings_cls()
    except ValidationError as exc:  # a configuration mistake: say which, without a traceback
        sys.exit(f"{parser.prog}: refusing to start: {_problems(exc)}")
    _install_uvloop()
    if args.command == "migrate":
        if migrate is None:
            parser.error("this service has no database")
        asyncio.run(migrate(settings))
        return
    serve(create_app(settings), settings)
