"""An optional display name, kept in a second cookie signed together with the user id.

Binding the signature to the user id means a name cookie copied into another browser (another
identity) is ignored. The name travels with each photo the user uploads from then on
(PhotoMeta.submitter_name), so every site shows it without knowing this cookie.

The API sets it with `POST /api/me {"display_name": "Ada"}` (an empty name forgets it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import unicodedata

from aiohttp import web

from domain.errors import InvalidRequest
from web.identity import USER_KEY, cookie_attributes
from web.keys import SETTINGS, SITE

COOKIE_NAME = "photo_session_name"
MAX_NAME = 60


def clean_name(raw) -> str:
    """The name as shown: whitespace collapsed, control characters refused, at most 60."""
    if not isinstance(raw, str):
        raise InvalidRequest('Send {"display_name": "<your name>"}.')
    name = " ".join(raw.split())
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidRequest("A name cannot contain control characters.")
    if len(name) > MAX_NAME:
        raise InvalidRequest(f"A name has at most {MAX_NAME} characters.")
    return name


def _sign(secret: str, user_id: str, name: str) -> str:
    message = f"name:{user_id}:{name}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def _encode(secret: str, user_id: str, name: str) -> str:
    text = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    return f"{text}.{_sign(secret, user_id, name)}"


def _decode(secret: str, user_id: str, value: str | None) -> str:
    if not value or value.count(".") != 1:
        return ""
    text, signature = value.split(".")
    try:
        name = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    return name if hmac.compare_digest(_sign(secret, user_id, name), signature) else ""


def display_name(request: web.Request) -> str:
    """The name this request's user chose, or ""."""
    secret = request.app[SETTINGS].cookie_secret
    return _decode(secret, request[USER_KEY], request.cookies.get(COOKIE_NAME))


def remember_name(request: web.Request, response: web.StreamResponse, name: str) -> None:
    settings = request.app[SETTINGS]
    attributes = cookie_attributes(settings, request.app[SITE])
    if not name:
        response.del_cookie(COOKIE_NAME, path="/", domain=attributes.get("domain"))
        return
    response.set_cookie(COOKIE_NAME, _encode(settings.cookie_secret, request[USER_KEY], name),
                        **attributes)
