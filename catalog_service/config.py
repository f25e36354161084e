"""Settings of catalog_service (environment variables prefixed ``CATALOG_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Validated at start; see ``shared.config.ServiceSettings`` for the common fields."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore", frozen=True)

    port: int = 8082
    database_url: str = "postgresql://postgres@127.0.0.1:54329/catalog"

    consume_saga: bool = True
    """Run the ``saga.stock.commands`` consumer (switched off only by tests of the HTTP side)."""
