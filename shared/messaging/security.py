"""TLS / SASL settings for every Kafka client (producer, consumer, admin), built in one place.

``<PREFIX>_KAFKA_SECURITY_PROTOCOL`` (``PLAINTEXT`` by default, ``SSL``, ``SASL_PLAINTEXT``,
``SASL_SSL``), ``<PREFIX>_KAFKA_SASL_MECHANISM`` (``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``),
``<PREFIX>_KAFKA_SASL_USERNAME`` / ``_PASSWORD`` and ``<PREFIX>_KAFKA_SSL_CAFILE`` / ``_CERTFILE`` /
``_KEYFILE`` (PEM files; without a CA file the system's trust store is used) become the keyword
arguments aiokafka's clients take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiokafka.helpers import create_ssl_context


class KafkaSecuritySettings(Protocol):
    @property
    def kafka_security_protocol(self) -> str: ...

    @property
    def kafka_sasl_mechanism(self) -> str: ...

    @property
    def kafka_sasl_username(self) -> str: ...

    @property
    def kafka_sasl_password(self) -> str: ...

    @property
    def kafka_ssl_cafile(self) -> str: ...

    @property
    def kafka_ssl_certfile(self) -> str: ...

    @property
    def kafka_ssl_keyfile(self) -> str: ...


def security_kwargs(
    protocol: str = "PLAINTEXT",
    *,
    sasl_mechanism: str = "PLAIN",
    username: str = "",
    password: str = "",
    cafile: str = "",
    certfile: str = "",
    keyfile: str = "",
) -> dict[str, Any]:
    """aiokafka's keyword arguments for ``protocol`` (nothing for ``PLAINTEXT``)."""
    if protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = create_ssl_context(
            cafile=cafile or None, certfile=certfile or None, keyfile=keyfile or None
        )
    if protocol.startswith("SASL_"):
        kwargs.update(sasl_mechanism=sasl_mechanism, sasl_plain_username=username, sasl_plain_password=password)
    return kwargs


def kafka_security(settings: KafkaSecuritySettings) -> dict[str, Any]:
    """The keyword arguments of a service's settings (``shared.config.ServiceSettings``)."""
    return security_kwargs(
        settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )


def security_from_env(env: Mapping[str, str], prefix: str = "KAFKA_") -> dict[str, Any]:
    """The same from unprefixed variables (``KAFKA_SECURITY_PROTOCOL``, ...), for the topics step."""
    return security_kwargs(
        env.get(f"{prefix}SECURITY_PROTOCOL") or "PLAINTEXT",
        sasl_mechanism=env.get(f"{prefix}SASL_MECHANISM") or "PLAIN",
        username=env.get(f"{prefix}SASL_USERNAME", ""),
        password=env.get(f"{prefix}SASL_PASSWORD", ""),
        cafile=env.get(f"{prefix}SSL_CAFILE", ""),
        certfile=env.get(f"{prefix}SSL_CERTFILE", ""),
        keyfile=env.get(f"{prefix}SSL_KEYFILE", ""),
    )
