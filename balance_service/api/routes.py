"""URL table of balance_service."""

from aiohttp import web

from balance_service.api import views

PREFIX = "/api/v1"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{PREFIX}/users", views.create_user)
    r.add_get(f"{PREFIX}/users/{{user_id}}", views.get_user)
    r.add_get(f"{PREFIX}/users/{{user_id}}/balance", views.get_balance)
    r.add_post(f"{PREFIX}/users/{{user_id}}/balance/charge", views.charge)
    r.add_get(f"{PREFIX}/users/{{user_id}}/balance/history", views.history)
    r.add_get("/internal/users/{user_id}", views.internal_get_user)
