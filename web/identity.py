"""The identity cookie: a random user id signed with the key all sites share.

Cookies are per host, not per port, so one cookie serves every site on a host; sites on
different hosts share it through `sites.cookie_domain` (a common parent domain). A cookie
whose signature does not verify is ignored and the request gets a fresh identity.

Signing is itsdangerous' (HMAC-SHA256 under a salt of its own, so no other value signed with
the same secret passes for an identity).
"""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from itsdangerous import BadSignature, Signer

COOKIE_NAME = "photo_session_user"
USER_KEY = web.RequestKey("user_id", str)
TEN_YEARS_S = 10 * 365 * 24 * 3600
VERIFIED_COOKIES = 4096  # Cookie headers whose verdict a site remembers (the longest known go)


def cookie_attributes(settings, site: int) -> dict:
    """How `site` sets its cookies: Secure when people reach it over HTTPS (directly or through
    a proxy that terminates TLS), with the shared parent domain when one is configured."""
    attributes = {"httponly": True, "samesite": "Lax", "path": "/", "max_age": TEN_YEARS_S,
                  "secure": urlsplit(settings.public_url(site)).scheme == "https" or None}
    if settings.cookie_domain:
        attributes["domain"] = settings.cookie_domain
    return attributes


def _signer(secret: str) -> Signer:
    return Signer(secret, salt="photo-session-user", digest_method=hashlib.sha256)


def cookie_value(secret: str, user_id: str) -> str:
    return _signer(secret).sign(user_id).decode()


def user_from_cookie(secret: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        user_id = _signer(secret).unsign(value).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    return user_id if len(user_id) == 32 and user_id.isalnum() else None


def identity_middleware(settings, site: int):
    secret = settings.cookie_secret
    attributes = cookie_attributes(settings, site)
    # A request's user depends on nothing but its Cookie header and the secret: the recent
    # headers' verdicts are remembered (parsing the header, a Signer and an HMAC per request,
    # ~12 us, against a lookup; most requests come from people who made one a moment ago).
    known: dict[str, str | None] = {}  # Cookie header -> its user (None: none verified)

    def user_of(request: web.Request) -> str | None:
        header = request.headers.get(hdrs.COOKIE)
        if header is None:
            return None
        try:
            return known[header]
        except KeyError:
            pass
        user_id = known[header] = user_from_cookie(secret, request.cookies.get(COOKIE_NAME))
        if len(known) > VERIFIED_COOKIES:
            del known[next(iter(known))]  # the longest known goes
        return user_id

    @web.middleware
    async def middleware(request: web.Request, handler):
        user_id = user_of(request)
        fresh = user_id is None
        if fresh:
            user_id = uuid.uuid4().hex
        request[USER_KEY] = user_id
        response = await handler(request)
        if fresh and not request.path.startswith("/internal/"):
            response.set_cookie(COOKIE_NAME, cookie_value(secret, user_id), **attributes)
        return response

    return middleware
