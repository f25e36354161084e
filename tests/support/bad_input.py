"""Bad values for every field of a valid request: integers past what the database stores, and a
NUL in every string. Used at the service level and through the gateway."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

HUGE = (2**63, 3366685300808034025472000)
"""One past the bigint maximum, and the fuzzer's value that once made a 500."""
NUL = "\u0000"


def _leaves(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path, node


def _replace(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    out = copy.deepcopy(body)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def body_mutations(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(field, bad body)``: each integer of ``body`` huge, each string with a NUL inside."""
    for path, value in _leaves(body):
        field = ".".join(map(str, path))
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            for huge in HUGE:
                yield field, _replace(body, path, huge)
        elif isinstance(value, str):
            yield field, _replace(body, path, value[:1] + NUL + value[1:])


def query_mutations(params: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``(parameter, bad query string)``: each parameter huge (if a number) and with a NUL."""
    for name, value in params.items():
        others = [f"{k}={quote(v)}" for k, v in params.items() if k != name]
        bad_values = [str(h) for h in HUGE] if value.isdigit() else []
        bad_values.append(value + NUL)
        for bad in bad_values:
            yield name, "&".join([*others, f"{name}={quote(bad)}"])


def names_field(problem: dict[str, Any], field: str) -> bool:
    """The problem is a ``400 VALIDATION_ERROR`` whose ``errors`` name ``field``."""
    fields = [e.get("field", "") for e in problem.get("errors") or []]
    return problem.get("code") == "VALIDATION_ERROR" and any(f == field or f.startswith(f"{field}.") for f in fields)
