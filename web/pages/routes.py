"""Every page's route: the home page (web.pages.home_page), the event page and what it posts
(web.pages.event_pages), the public, audit and status pages (web.pages.report_pages)."""

from __future__ import annotations

from aiohttp import web

from web.pages.event_pages import (
    event_page,
    event_parts,
    photo_thumb,
    upload_from_form,
    vote_from_form,
)
from web.pages.home_page import create_from_form, home, name_from_form
from web.pages.reachability import setup_peer_watch
from web.pages.rendering import STATIC, setup_templates
from web.pages.report_pages import audit_page, public_page, status_page


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "public, max-age=86400"})


def setup_pages(app: web.Application) -> None:
    setup_templates(app)
    setup_peer_watch(app)
    app.router.add_get("/", home)
    app.router.add_post("/events", create_from_form)
    app.router.add_post("/me", name_from_form)
    app.router.add_get("/events/{event_id}", event_page)
    app.router.add_get("/events/{event_id}/parts", event_parts)
    app.router.add_post("/events/{event_id}/photos", upload_from_form)
    app.router.add_get("/events/{event_id}/thumbs/{photo_id}.jpg", photo_thumb)
    app.router.add_post("/events/{event_id}/votes", vote_from_form)
    app.router.add_get("/events/{event_id}/audit", audit_page)
    app.router.add_get("/public/{event_id}", public_page)
    app.router.add_get("/status", status_page)
    app.router.add_get("/favicon.ico", favicon)
