"""Settings of order_service (environment variables prefixed ``ORDER_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Validated at start; see ``shared.config.ServiceSettings`` for the common fields."""

    model_config = SettingsConfigDict(env_prefix="ORDER_", extra="ignore", frozen=True)

    port: int = 8084
    database_url: str = "postgresql://postgres@127.0.0.1:54329/orders"
    balance_url: str = "http://127.0.0.1:8081"
    catalog_url: str = "http://127.0.0.1:8082"
    http_timeout_s: float = Field(default=3.0, gt=0)
    order_wait_timeout_s: float = Field(default=10.0, ge=0)
    saga_step_timeout_s: float = Field(default=5.0, gt=0)
    saga_max_attempts: int = Field(default=3, ge=1)
    saga_backoff_cap_s: float = Field(default=30.0, gt=0)
    saga_sweep_interval_s: float = Field(default=0.3, gt=0)
    saga_sweep_batch: int = Field(default=200, ge=1)
    saga_outage_grace_s: float = Field(default=10.0, ge=0)
    """No saga times out until this long after this instance last failed to reach the broker."""
    saga_history_retention_hours: float = Field(default=720.0, gt=0)
    """How long the saga view keeps an order's history (commands, replies, timeouts, outcome)."""
    saga_workers: bool = True
    """Run the reply consumer and the sweeper here (False: an API-only instance)."""
