"""The events a person created or opened, newest first, in a cookie (shared by every site on a
host, like the identity). The home page shows those that still exist, checking from the
event's own state whether this person contributed, so the list claims nothing on trust but
"I created it" (which only ever changes what the claimant sees)."""

from __future__ import annotations

import uuid

from aiohttp import web

from web.identity import cookie_attributes
from web.keys import SETTINGS, SITE

COOKIE_NAME = "photo_session_events"
CREATED, OPENED = "c", "o"
MAX_EVENTS = 30


def _valid_id(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def remembered(request: web.Request) -> list[tuple[str, str]]:
    """[(event_id, CREATED | OPENED)], newest first; anything malformed is dropped."""
    entries = []
    for item in request.cookies.get(COOKIE_NAME, "").split("~"):
        kind, event_id = item[:1], item[1:]
        if kind in (CREATED, OPENED) and _valid_id(event_id):
            entries.append((event_id, kind))
    return entries


def remember(request: web.Request, response: web.StreamResponse, event_id: str, kind: str) -> None:
    """Put the event first in the list; a created event stays marked created."""
    entries = remembered(request)
    known = dict(entries)
    if known.get(event_id) == CREATED:
        kind = CREATED
    if entries[:1] == [(event_id, kind)]:
        return  # already first: no cookie to rewrite
    rest = [(e, k) for e, k in entries if e != event_id]
    value = "~".join(k + e for e, k in [(event_id, kind), *rest][:MAX_EVENTS])
    attributes = cookie_attributes(request.app[SETTINGS], request.app[SITE])
    response.set_cookie(COOKIE_NAME, value, **{**attributes, "max_age": 365 * 24 * 3600})
