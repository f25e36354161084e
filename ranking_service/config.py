"""Settings of ranking_service (environment variables prefixed ``RANKING_``)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Validated at start; see ``shared.config.ServiceSettings`` for the common fields."""

    model_config = SettingsConfigDict(env_prefix="RANKING_", extra="ignore", frozen=True)

    port: int = 8085
    database_url: str = "postgresql://postgres@127.0.0.1:54329/ranking"
    timezone: str = "Asia/Seoul"
    cache_ttl_s: float = Field(default=1.0, ge=0, description="how long a ranking answer is reused")
    batch_interval_s: float = Field(default=1.0, gt=0, description="how often the scheduler checks the time")
    batch_delay_s: float = Field(default=30.0, ge=0, description="grace after midnight for late events")
    batch_catch_up_days: int = Field(default=30, ge=1, le=366)
    snapshot_size: int = Field(default=100, ge=1, le=10_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
