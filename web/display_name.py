"""An optional display name, kept in a second cookie signed together with the user id.

Binding the signature to the user id means a name cookie copied into another browser (another
identity) is ignored. itsdangerous signs it (the user id is part of its salt). The name travels with each photo the user uploads from then on
(PhotoMeta.submitter_name), so every site shows it without knowing this cookie.

The API sets it with `POST /api/me {"display_name": "Ada"}` (an empty name forgets it).
"""

from __future__ import annotations

import hashlib
import re

from aiohttp import web
from itsdangerous import BadSignature, URLSafeSerializer

from domain.errors import InvalidRequest
from web.identity import USER_KEY, cookie_attributes
from web.keys import SETTINGS, SITE

COOKIE_NAME = "photo_session_name"
MAX_NAME = 60
# What a name may not hold (a regex class, also in the API's OpenAPI document): control
# characters other than spaces (those are collapsed) and invisible formatting and direction
# marks (a name must read as it is). Unpaired surrogates are refused too: UTF-8 cannot carry them.
REFUSED_IN_NAME = ("\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u061c\u180e\u200b-\u200f"
                   "\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb")
_REFUSED = re.compile(f"[{REFUSED_IN_NAME}]")


def clean_name(raw) -> str:
    """The name as shown: at most 60 characters, none refused, whitespace collapsed."""
    if not isinstance(raw, str):
        raise InvalidRequest('Send {"display_name": "<your name>"}.')
    if len(raw) > MAX_NAME:
        raise InvalidRequest(f"A name has at most {MAX_NAME} characters.")
    if _REFUSED.search(raw) or _has_surrogates(raw):
        raise InvalidRequest("A name cannot contain control or invisible formatting characters.")
    return " ".join(raw.split())


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _serializer(secret: str, user_id: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"photo-session-name:{user_id}",
                             signer_kwargs={"digest_method": hashlib.sha256})


def _encode(secret: str, user_id: str, name: str) -> str:
    return _serializer(secret, user_id).dumps(name)


def _decode(secret: str, user_id: str, value: str | None) -> str:
    if not value:
        return ""
    try:
        name = _serializer(secret, user_id).loads(value)
    except BadSignature:
        return ""
    return name if isinstance(name, str) else ""


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
