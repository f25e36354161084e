"""The public routes of coupon_service (paths exactly as API.md)."""

from aiohttp import web

from coupon_service.api import views


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/admin/coupons", views.create_coupon)
    app.router.add_get("/api/v1/coupons/{coupon_id}", views.get_coupon)
    app.router.add_post("/api/v1/coupons/{coupon_id}/issue", views.issue_coupon)
    app.router.add_get("/api/v1/users/{user_id}/coupons", views.user_coupons)
