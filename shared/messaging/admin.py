"""Kafka topics: the one authoritative creation step, and what a service does at start.

Outside development topics are made by one step run before the services (the Kubernetes
``kafka-topics`` Job, ``python -m shared.messaging.admin``), with the settings of the
cluster: partitions, replication factor, ``min.insync.replicas`` and retention. It creates what is
missing, sets the configs of topics that exist, and fails on what it cannot fix (a topic with
another replication factor or fewer partitions: changing those is an operator's decision, since
more partitions re-map keys and break per-key order).

A service never decides a topic's settings. In development (and tests) it creates the topics it
is missing with the defaults (one replica, :data:`DEFAULT_PARTITIONS`), so a laptop broker works
without setup; outside development it only checks that they exist (``kafka_create_topics``). In
both cases an existing topic is left as it is, so a service that starts first cannot leave
single-replica topics behind for the Job to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from shared.messaging.security import security_from_env
from shared.messaging.topics import ALL, DEFAULT_PARTITIONS

log = logging.getLogger(__name__)
_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    """How the application's topics are made in a real cluster."""

    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    configs: Mapping[str, str] = field(default_factory=dict)
    """Topic configs set on every topic, e.g. ``min.insync.replicas``, ``retention.ms``."""


class TopicError(RuntimeError):
    """A topic exists with settings the provisioning step cannot change."""


def _admin(bootstrap: str, timeout_s: float, security: Mapping[str, Any] | None) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **dict(security or {})
    )


async def _close(admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(admin.close(), 2.0)


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic], timeout_s: float) -> None:
    """Create ``topics``; one that appeared meanwhile (another creator) is fine."""
    if not topics:
        return
    response = await asyncio.wait_for(admin.create_topics(topics, timeout_ms=int(timeout_s * 1000)), timeout_s)
    for topic, code, *message in getattr(response, "topic_errors", ()):
        if code not in (0, _ALREADY_EXISTS):
            raise KafkaError(f"creating {topic}: error {code} {message}")


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    timeout_s: float = 10.0,
    *,
    create: bool = True,
    security: Mapping[str, Any] | None = None,
) -> bool:
    """A service's start: with ``create`` make the missing topics (development defaults), else
    only check they exist. Existing topics are never changed. ``False`` (logged) when a topic is
    missing and not created, or the broker cannot be reached: the service starts anyway and its
    consumers wait for the topics."""
    wanted = sorted(set(names))
    admin = _admin(bootstrap, timeout_s, security)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        missing = [n for n in wanted if n not in existing]
        if missing and not create:
            log.error(
                "topics missing; create them with the topics step (python -m shared.messaging.admin)",
                extra={"topics": missing},
            )
            return False
        await _create(admin, [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing], timeout_s)
        return True
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("could not ensure topics", extra={"topics": wanted, "error": repr(exc)})
        return False
    finally:
        await _close(admin)


async def describe(admin: AIOKafkaAdminClient, names: list[str], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{topic: {"partitions": n, "replication_factor": r, "configs": {key: value}}}`` for ``names``."""
    out: dict[str, dict[str, Any]] = {}
    for topic in await admin.describe_topics(names):
        parts = topic["partitions"]
        out[topic["topic"]] = {
            "partitions": len(parts),
            "replication_factor": min((len(p["replicas"]) for p in parts), default=0),
        }
    keys = list(keys)
    resources = [ConfigResource(ConfigResourceType.TOPIC, n, configs=dict.fromkeys(keys) or None) for n in names]
    for response in await admin.describe_configs(resources):
        for _code, _msg, _type, name, entries in response.resources:
            values = {entry[0]: entry[1] for entry in entries}
            out.setdefault(name, {})["configs"] = {k: values.get(k) for k in keys}
    return out


async def _complete(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """:func:`describe` once every topic's metadata lists its partitions. Right after CreateTopics a
    broker may still answer with none (it learns of a new topic asynchronously), which would read as
    "0 partitions, replication factor 0"; waited for, ``timeout_s`` at most."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await describe(admin, names, ())
        if all(found.get(n, {}).get("partitions") for n in names) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def provision_topics(
    bootstrap: str,
    names: Iterable[str],
    spec: TopicSpec,
    *,
    timeout_s: float = 30.0,
    security: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The authoritative step: create the missing topics as ``spec`` says, set ``spec.configs`` on
    every topic, and raise :class:`TopicError` for an existing topic whose replication factor
    differs or that has fewer partitions. Returns :func:`describe` of the topics afterwards."""
    wanted = sorted(set(names))
    admin = _admin(bootstrap, timeout_s, security)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        await _create(
            admin,
            [
                NewTopic(
                    n,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=dict(spec.configs),
                )
                for n in wanted
                if n not in existing
            ],
            timeout_s,
        )
        present = await _complete(admin, wanted, timeout_s)
        wrong = [
            f"{n}: {d['partitions']} partitions, replication factor {d['replication_factor']}"
            for n, d in present.items()
            if d["replication_factor"] != spec.replication_factor or d["partitions"] < spec.partitions
        ]
        if wrong:
            raise TopicError(
                f"wanted {spec.partitions} partitions, replication factor {spec.replication_factor}; "
                f"found {'; '.join(wrong)} (reassign or recreate them: this step does not)"
            )
        if spec.configs:
            # AlterConfigs (not incremental) replaces a topic's dynamic configs with these: the
            # step owns them, so a hand-made change is put back on every run.
            await asyncio.wait_for(
                admin.alter_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, n, configs=dict(spec.configs)) for n in wanted]
                ),
                timeout_s,
            )
        return await describe(admin, wanted, spec.configs)
    finally:
        await _close(admin)


def _env_spec(env: Mapping[str, str]) -> tuple[list[str], TopicSpec]:
    configs = {}
    if env.get("KAFKA_MIN_INSYNC_REPLICAS"):
        configs["min.insync.replicas"] = env["KAFKA_MIN_INSYNC_REPLICAS"]
    if env.get("KAFKA_RETENTION_MS"):
        configs["retention.ms"] = env["KAFKA_RETENTION_MS"]
    prefix = env.get("KAFKA_TOPIC_PREFIX", "")
    topics = [prefix + t for t in (env.get("KAFKA_TOPICS") or " ".join(ALL)).split()]
    spec = TopicSpec(
        partitions=int(env.get("KAFKA_PARTITIONS") or DEFAULT_PARTITIONS),
        replication_factor=int(env.get("KAFKA_REPLICATION_FACTOR") or 1),
        configs=configs,
    )
    return topics, spec


def main(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    """``python -m shared.messaging.admin``: provision the topics from ``KAFKA_*`` variables
    (``KAFKA_BOOTSTRAP``, ``KAFKA_TOPICS``, ``KAFKA_PARTITIONS``, ``KAFKA_REPLICATION_FACTOR``,
    ``KAFKA_MIN_INSYNC_REPLICAS``, ``KAFKA_RETENTION_MS``, ``KAFKA_TOPIC_PREFIX`` and the
    ``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SASL_*`` / ``KAFKA_SSL_*`` of the services)."""
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.admin", description=main.__doc__)
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bootstrap = env.get("KAFKA_BOOTSTRAP")
    if not bootstrap:
        print("KAFKA_BOOTSTRAP is required", file=sys.stderr)
        return 2
    topics, spec = _env_spec(env)
    try:
        state = asyncio.run(provision_topics(bootstrap, topics, spec, security=security_from_env(env)))
    except (TopicError, KafkaError, TimeoutError, OSError) as exc:
        print(f"topics not provisioned: {exc}", file=sys.stderr)
        return 1
    for name, info in state.items():
        print(f"{name} partitions={info['partitions']} replication={info['replication_factor']} {info['configs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
