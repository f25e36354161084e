"""Settings of coupon_service (environment variables prefixed ``COUPON_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Validated at start; see ``shared.config.ServiceSettings`` for the common fields."""

    model_config = SettingsConfigDict(env_prefix="COUPON_", extra="ignore", frozen=True)

    port: int = 8083
    database_url: str = "postgresql://postgres@127.0.0.1:54329/coupon"
    balance_url: str = "http://127.0.0.1:8081"
    user_lookup_timeout_s: float = Field(default=2.0, gt=0)
