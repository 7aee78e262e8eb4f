"""Rendering pages with Jinja2 (aiohttp-jinja2): what every template gets, the security headers
every page carries, and the few answers every page handler shares."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web.csrf import FIELD, csrf_token
from web.display_name import display_name
from web.identity import USER_KEY
from web.keys import SETTINGS, SITE

HERE = Path(__file__).parent.parent  # web/: its templates and static files
STATIC = HERE / "static"
# Scripts and styles come only from /static: no inline script can run, whatever a page shows.
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app.router.add_static("/static", STATIC, name="static", append_version=True)


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def common(request: web.Request) -> dict:
    """What every template may use."""
    settings = request.app[SETTINGS]
    return {
        "site": request.app[SITE],
        "csrf_field": FIELD,
        "csrf_token": csrf_token(settings.cookie_secret, request[USER_KEY]),
        "display_name": display_name(request),
        "path": request.path_qs,
    }


def render(request: web.Request, template: str, context: dict, status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, {**common(request), **context},
                                              status=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def not_found(request: web.Request, message: str) -> web.Response:
    return render(request, "error.html", {"title": "Not found", "message": message}, status=404)


async def refused_page(request: web.Request, message: str) -> web.Response:
    """What a person sees when a form post is refused as cross-site (web.csrf)."""
    return render(request, "error.html", {"title": "Refused", "message": message}, status=403)


def see_other(location: str) -> web.Response:
    """A redirect returned (not raised), so that cookies can be set on it."""
    return web.Response(status=303, headers={"Location": location})
