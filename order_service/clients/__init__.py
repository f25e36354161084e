"""HTTP clients of the services order_service calls (adapters of ``service.ports``); balance's user
lookup is the shared client (``shared.clients.balance``)."""

from order_service.clients.catalog import HttpCatalog

__all__ = ["HttpCatalog"]
