"""Creating the topics a service uses, so it works on a broker without auto-creation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.messaging.topics import DEFAULT_PARTITIONS

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int = DEFAULT_PARTITIONS, timeout_s: float = 10.0
) -> bool:
    """Create the missing topics; return ``False`` (and log) when the broker cannot be reached."""
    wanted = sorted(set(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        missing = [n for n in wanted if n not in existing]
        if missing:
            new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
            try:
                await asyncio.wait_for(admin.create_topics(new), timeout_s)
            except TopicAlreadyExistsError:
                pass
        return True
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("could not ensure topics", extra={"topics": wanted, "error": repr(exc)})
        return False
    finally:
        try:
            await asyncio.wait_for(admin.close(), 2.0)
        except BaseException:  # noqa: BLE001 - closing a client that never connected
            pass
