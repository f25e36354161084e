"""Token bucket per client address (in memory, per gateway instance).

Behind an Ingress every request comes from the controller's address, so the client is taken
from ``X-Forwarded-For``, but only when the peer is a configured trusted proxy (anyone else could
write any address there and get a fresh bucket per request). The list is read from the right:
each proxy appends the address it saw, so the first address that is not a trusted proxy is the
client as the outermost trusted proxy saw it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved; ``take`` returns seconds to wait (0 = go)."""

    MAX_CLIENTS = 10_000

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._prune(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget clients whose bucket has refilled (they would start full anyway)."""
        if len(self._buckets) < self.MAX_CLIENTS:
            return
        full_after = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < full_after}


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def _trusted(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(remote: str | None, forwarded_for: str | None, trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client a request is counted for: ``remote``, or, when ``remote`` is a trusted proxy,
    the rightmost address of ``X-Forwarded-For`` that is not one."""
    client = remote or "unknown"
    if not trusted or not forwarded_for or not _trusted(client, trusted):
        return client
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        client = hop
        if not _trusted(hop, trusted):
            break
    return client
