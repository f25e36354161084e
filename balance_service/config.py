"""Settings of balance_service (environment variables prefixed ``BALANCE_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Validated at start; see ``shared.config.ServiceSettings`` for the common fields."""

    model_config = SettingsConfigDict(env_prefix="BALANCE_", extra="ignore", frozen=True)

    port: int = 8081
    database_url: str = "postgresql://postgres@127.0.0.1:54329/balance"
    idempotency_key_hours: float = Field(default=48.0, ge=24.0)
    """How long an Idempotency-Key is remembered (the contract promises at least 24 hours)."""
    cleanup_interval_s: float = Field(default=600.0, gt=0)
    """How often old idempotency keys and inbox rows are deleted."""
