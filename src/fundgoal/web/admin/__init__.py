"""The admin dashboard under /admin (see views.py and auth.py), plus its two static files."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ...errors import NotFound
from ...resources import widgets_dir
from .. import convertors  # noqa: F401 - registers {name:id} before the routes below
from . import auth, views

ASSETS = {"admin.css": "text/css; charset=utf-8", "admin.js": "text/javascript; charset=utf-8"}


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        raise NotFound("no such file")
    return FileResponse(
        widgets_dir() / name,
        media_type=ASSETS[name],
        headers={"cache-control": "public, max-age=300", "x-content-type-options": "nosniff"},
    )


routes = [
    Route("/static/admin/{name}", asset, methods=["GET", "HEAD"]),
    Route("/admin/login", auth.login_form, methods=["GET"]),
    Route("/admin/login", auth.login, methods=["POST"]),
    Route("/admin/logout", auth.logout, methods=["POST"]),
    Route("/admin", views.overview, methods=["GET"]),
    Route("/admin/campaigns", views.campaign_list, methods=["GET"]),
    Route("/admin/campaigns/new", views.campaign_new, methods=["GET", "POST"]),
    Route("/admin/campaigns/{slug}", views.campaign_edit, methods=["GET", "POST"]),
    Route("/admin/campaigns/{slug}/status", views.campaign_status, methods=["POST"]),
    Route("/admin/campaigns/{slug}/repair", views.repair, methods=["POST"]),
    Route("/admin/campaigns/{slug}/reports", views.reports, methods=["GET"]),
    Route("/admin/campaigns/{slug}/embed", views.embed, methods=["GET"]),
    Route("/admin/donations", views.donation_list, methods=["GET"]),
    Route("/admin/donations/export.csv", views.donation_export, methods=["GET"]),
    Route("/admin/donations/{entry_id:id}", views.donation_detail, methods=["GET"]),
    Route("/admin/donations/{entry_id:id}/edit", views.gift_edit, methods=["GET", "POST"]),
    Route("/admin/donations/{entry_id:id}/void", views.gift_void, methods=["POST"]),
    Route("/admin/gifts/new", views.gift_new, methods=["GET", "POST"]),
    Route("/admin/gifts/import", views.import_page, methods=["GET", "POST"]),
    Route("/admin/gifts/import/confirm", views.import_confirm, methods=["POST"]),
    Route("/admin/audit", views.audit_log, methods=["GET"]),
]
