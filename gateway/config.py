"""Settings of the gateway (environment variables prefixed ``GATEWAY_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    """Validated at start."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = 8080
    balance_urls: str = "http://127.0.0.1:8081"
    catalog_urls: str = "http://127.0.0.1:8082"
    coupon_urls: str = "http://127.0.0.1:8083"
    order_urls: str = "http://127.0.0.1:8084"
    ranking_urls: str = "http://127.0.0.1:8085"
    admin_token: str = ""
