"""Photos and montages, for submitters (and for everyone once published).

Every refusal here is a domain error, so it answers in the API's JSON error shape: 404
unknown_event, 404 not_published, 403 not_submitter, 404 no_montage (no such version), 400
invalid_request (an unknown `size`).

A montage comes in two renditions (`?size=full`, the default: the keepsake; `?size=screen`:
~1600 px for pages, offered with srcset).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from domain.errors import (
    InvalidRequest,
    NoMontage,
    NotPublished,
    NotSubmitter,
    UnknownEvent,
)
from eventstore.collage import FULL, RENDITIONS, Rendition
from web.identity import USER_KEY
from web.keys import SERVICE

JPEG = "image/jpeg"
CACHE = "private, max-age=31536000, immutable"


def _for_submitters(state, user_id: str) -> None:
    if user_id not in state.submitters and not state.published:
        raise NotSubmitter("Only people who submitted a photo may see this event's photos before it is published.")


def rendition_asked(request: web.Request) -> Rendition:
    name = request.query.get("size", FULL.name)
    if name not in RENDITIONS:
        raise InvalidRequest(f"size must be one of {', '.join(sorted(RENDITIONS))}, not {name!r}.")
    return RENDITIONS[name]


async def montage(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    state = await service.event_state(request.match_info["event_id"])
    _for_submitters(state, request[USER_KEY])
    rendition = rendition_asked(request)
    version = request.query.get("v", str(state.version))
    if not version.isdigit() or not 1 <= int(version) <= state.version:
        raise NoMontage()
    data = await service.montages.bytes(state, int(version), rendition)
    return web.Response(body=data, content_type=JPEG, headers={"Cache-Control": "private, no-cache"})


def photo_in(state, photo_id: str):
    """The event's photo named `photo_id`; UnknownEvent (404) if it has none."""
    match = next((p for p in state.photos if p.photo_id == photo_id), None)
    if match is None:
        raise UnknownEvent("There is no such photo in this event.")
    return match


async def photo(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    state = await service.event_state(request.match_info["event_id"])
    _for_submitters(state, request[USER_KEY])
    match = photo_in(state, request.match_info["photo_id"])
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(None, service.files.read, "photo", match.sha256)
    return web.Response(body=data, content_type=JPEG, headers={"Cache-Control": CACHE})


async def public_montage(request: web.Request) -> web.Response:
    """The keepsake, for anyone; before publication the API's JSON error (404 not_published)."""
    service = request.app[SERVICE]
    state = await service.event_state(request.match_info["event_id"])
    if not state.published:
        raise NotPublished()
    rendition = rendition_asked(request)
    data = await service.montages.bytes(state, state.published_version, rendition)
    return web.Response(body=data, content_type=JPEG, headers={"Cache-Control": "public, max-age=31536000, immutable"})


def setup_image_routes(app: web.Application) -> None:
    app.router.add_get("/events/{event_id}/montage.jpg", montage)
    app.router.add_get("/events/{event_id}/photos/{photo_id}.jpg", photo)
    app.router.add_get("/public/{event_id}/montage.jpg", public_montage)
