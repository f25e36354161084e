"""The catalog's errors: one root, mapped to HTTP problems in ``catalog_service.api.errors``."""


class CatalogError(Exception):
    """Root of every error of the catalog context."""


class ProductNotFoundError(CatalogError):
    """No product has the requested id."""

    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class InvalidProductChangeError(CatalogError):
    """A change that the product rules refuse (e.g. asking for SOLD_OUT directly)."""
