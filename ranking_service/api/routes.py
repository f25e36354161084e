"""Routes of ranking_service (public paths of API.md, ``/api/v1`` included)."""

from aiohttp import web

from ranking_service.api import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/rankings/top-products", views.get_top_products)
    app.router.add_post("/api/v1/admin/rankings/rebuild", views.post_rebuild)
