"""Settings of the gateway (environment variables prefixed ``GATEWAY_``)."""

from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings

SERVICES = ("balance", "catalog", "coupon", "order", "ranking")
# Tokens that ship in this repository's files (the old compose default, the Secret template):
# known to everyone who read them, so never accepted in production.
KNOWN_TOKENS = frozenset({"change-me-admin-token", "REPLACE-WITH-A-LONG-RANDOM-TOKEN"})


def split_urls(value: str) -> list[str]:
    """``"http://a:1, http://b:2/"`` -> ``["http://a:1", "http://b:2"]``."""
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


@cache
def trusted_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"10.0.0.0/8, 192.168.1.7"`` -> the networks (a bare address is a /32 or /128)."""
    return tuple(ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


class Settings(BaseServiceSettings):
    """Validated at start; production refuses to run without an admin token."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = 8080
    balance_urls: str = "http://127.0.0.1:8081"
    catalog_urls: str = "http://127.0.0.1:8082"
    coupon_urls: str = "http://127.0.0.1:8083"
    order_urls: str = "http://127.0.0.1:8084"
    ranking_urls: str = "http://127.0.0.1:8085"
    admin_token: str = ""
    # upstream calls
    timeout_s: float = Field(default=5.0, gt=0)
    order_create_timeout_s: float = Field(default=15.0, gt=0)
    connect_timeout_s: float = Field(default=1.0, gt=0)
    health_timeout_s: float = Field(default=1.0, gt=0)
    pool_limit: int = Field(default=1000, ge=1)
    pool_limit_per_host: int = Field(default=200, ge=1)
    # circuit breaker per instance
    circuit_failures: int = Field(default=3, ge=1)
    circuit_cooldown_s: float = Field(default=5.0, gt=0)
    retry_after_s: int = Field(default=2, ge=1)
    # rate limit per client address (0 = off)
    rate_limit_rps: float = Field(default=0.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    # Addresses or CIDR ranges of the proxies in front of the gateway (the Ingress controller's
    # pods), comma-separated. Only a request from one of them has its X-Forwarded-For believed for
    # the rate limit; empty: the client is the peer address, and X-Forwarded-For is ignored.
    trusted_proxies: str = ""
    # how often each service instance's /health/ready is polled (its routes answer 503 while down),
    # and how long a poll may take: above the services' own 2 s check, so a busy pool is not "down"
    readiness_interval_s: float = Field(default=2.0, gt=0)
    readiness_timeout_s: float = Field(default=3.0, gt=0)
    # merged OpenAPI document
    docs_cache_s: float = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _checks(self) -> "Settings":
        if self.environment == "production" and len(self.admin_token) < 16:
            raise ValueError("admin_token (GATEWAY_ADMIN_TOKEN, >= 16 chars) is required in production")
        if self.environment == "production" and self.admin_token in KNOWN_TOKENS:
            raise ValueError("GATEWAY_ADMIN_TOKEN is a placeholder from this repository; set a random one")
        trusted_networks(self.trusted_proxies)  # raises on a malformed entry
        for name in SERVICES:
            if not split_urls(getattr(self, f"{name}_urls")):
                raise ValueError(f"{name}_urls needs at least one URL")
        return self

    @property
    def trusted_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return trusted_networks(self.trusted_proxies)

    def urls(self, service: str) -> list[str]:
        """The base URLs of a service's instances."""
        return split_urls(getattr(self, f"{service}_urls"))
