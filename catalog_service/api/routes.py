"""The catalog's routes: public paths of API.md, admin paths, and ``/internal`` (undocumented)."""

from aiohttp import web

from catalog_service.api import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/products", views.list_products)
    app.router.add_get("/api/v1/products/{product_id}", views.get_product)
    app.router.add_post("/api/v1/admin/products", views.create_product)
    app.router.add_patch("/api/v1/admin/products/{product_id}", views.patch_product)
    app.router.add_post("/internal/products/lookup", views.lookup_products)
