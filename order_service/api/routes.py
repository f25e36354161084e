"""URL table of order_service."""

from aiohttp import web

from order_service.api import admin, views

PREFIX = "/api/v1"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{PREFIX}/orders", views.place_order)
    r.add_get(f"{PREFIX}/orders/{{order_id}}", views.get_order)
    r.add_get(f"{PREFIX}/users/{{user_id}}/orders", views.user_orders)
    r.add_get(f"{PREFIX}/admin/orders/{{order_id}}/saga", admin.order_saga)
    r.add_get(f"{PREFIX}/admin/sagas", admin.unfinished_sagas)
