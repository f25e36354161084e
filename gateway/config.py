"""Settings of the gateway (environment variables prefixed ``GATEWAY_``)."""

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings

SERVICES = ("balance", "catalog", "coupon", "order", "ranking")


def split_urls(value: str) -> list[str]:
    """``"http://a:1, http://b:2/"`` -> ``["http://a:1", "http://b:2"]``."""
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


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
    # merged OpenAPI document
    docs_cache_s: float = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _checks(self) -> "Settings":
        if self.environment == "production" and len(self.admin_token) < 16:
            raise ValueError("admin_token (GATEWAY_ADMIN_TOKEN, >= 16 chars) is required in production")
        for name in SERVICES:
            if not split_urls(getattr(self, f"{name}_urls")):
                raise ValueError(f"{name}_urls needs at least one URL")
        return self

    def urls(self, service: str) -> list[str]:
        """The base URLs of a service's instances."""
        return split_urls(getattr(self, f"{service}_urls"))
