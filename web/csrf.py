"""Cross-site request forgery: what makes a state-changing request from a browser trustworthy.

Two checks, for every POST, PUT, PATCH and DELETE (the site-to-site API has its own HMAC):
- Origin: a request whose Origin is not one of our sites (as peers reach them, `sites.urls`, or
  as people do, `sites.public_urls`), or is "null" (a sandboxed frame), is refused everywhere.
- Token, for the pages' own routes (forms and the scripts that enhance them): the request must
  carry the user's token, an HMAC of the identity cookie's user id with the cookie key. All sites
  share that key, so a page from one site may post to another. The JSON API under /api/ is
  also used by scripts without a browser; there the Origin check and the SameSite cookie are
  the protection (a cross-site JSON body needs a CORS preflight, which no site answers).

The token travels in the `X-CSRF-Token` header (fetch, XHR), the `csrf_token` field of a
url-encoded form, or, for a multipart form without scripts, the `csrf_token` query parameter
(the body of an upload is not buffered just to find a field).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from web.forms import read_form
from web.identity import USER_KEY
from web.json_codec import json_response
from web.settings import DEFAULT_PORTS

HEADER = "X-CSRF-Token"
FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FORM_TYPE = "application/x-www-form-urlencoded"


def csrf_token(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{user_id}".encode(), hashlib.sha256).hexdigest()[:40]


def token_matches(secret: str, user_id: str, candidate: str | None) -> bool:
    return bool(candidate) and hmac.compare_digest(csrf_token(secret, user_id), candidate)


def origin_of(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL, the port filled in from the scheme as browsers leave it out."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number: matches no site
        return ("", None)
    return ((parts.hostname or "").lower(), port)


def allowed_origins(settings) -> set[tuple[str, int | None]]:
    """Every site's origin as peers and as people reach it, and as localhost (same machine)."""
    urls = [settings.site_url(s) for s in settings.sites]
    urls += [settings.public_url(s) for s in settings.sites]
    return ({origin_of(url) for url in urls}
            | {("localhost", settings.site_port(s)) for s in settings.sites})


async def _token_in(request: web.Request) -> str | None:
    if token := request.headers.get(HEADER):
        return token
    if request.content_type == FORM_TYPE:
        return (await read_form(request)).get(FIELD)  # small: a title, a vote, a name
    return request.query.get(FIELD)


def csrf_middleware(settings, refused_page=None):
    """refused_page(request, message) -> the Response a person sees when a form is refused;
    scripts (the API, or a request that accepts JSON) get the JSON error instead."""
    allowed = allowed_origins(settings)
    secret = settings.cookie_secret

    async def refuse(request: web.Request, code: str, message: str) -> web.Response:
        wants_json = "application/json" in request.headers.get("Accept", "")
        if refused_page is None or wants_json or request.path.startswith("/api/"):
            return json_response({"error": code, "message": message}, status=403)
        return await refused_page(request, message)

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.method in SAFE_METHODS or request.path.startswith("/internal/"):
            return await handler(request)
        origin = request.headers.get("Origin")
        if origin is not None and origin_of(origin) not in allowed:
            return await refuse(request, "forbidden_origin", "Cross-site requests are refused.")
        if not request.path.startswith("/api/"):
            if not token_matches(secret, request[USER_KEY], await _token_in(request)):
                return await refuse(request, "csrf_token_invalid",
                                    "This form is out of date or came from another site; "
                                    "reload the page and try again.")
        return await handler(request)

    return middleware
