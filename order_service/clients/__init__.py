"""HTTP clients of the services order_service calls (adapters of ``service.ports``)."""

from order_service.clients.catalog import HttpCatalog
from order_service.clients.users import HttpUserRegistry

__all__ = ["HttpCatalog", "HttpUserRegistry"]
