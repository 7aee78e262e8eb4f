"""The event page and what it posts: photos (one file per request from the page's script, with
progress), votes, and its live parts.

On every server-sent event the page asks `GET /events/{id}/parts` for its parts, rendered by the
same templates as the page, and swaps those that changed: one set of templates (escaping
everything) says what the page says, with or without scripts. Form posts answer with a redirect,
or with JSON when the page's script asks for it.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from domain.errors import PhotoSessionError, UnknownEvent
from web.display_name import display_name
from web.event_view import event_view, published_at
from web.forms import read_form
from web.identity import USER_KEY
from web.images import CACHE as THUMB_CACHE
from web.images import _for_submitters as for_submitters
from web.images import photo_in
from web.json_codec import json_response
from web.keys import SERVICE, SETTINGS
from web.pages.my_events import OPENED, remember
from web.pages.outage import outage
from web.pages.reachability import PEER_WATCH
from web.pages.rendering import common, not_found, render, see_other, wants_json
from web.pages.sentences import sentence, sentences
from web.pages.vote_words import tally
from web.uploads import read_photo_parts
from web.views import event_json

PARTS = ("banner", "outage", "outcome", "photos", "montage", "vote")


def _back_to(event_id: str) -> web.Response:
    return see_other(f"/events/{event_id}")


def _refused(request: web.Request, event_id: str, error: PhotoSessionError, during: str) -> web.Response:
    """A use case said no: JSON for the page's script, else the event page saying why."""
    if wants_json(request):
        raise error
    if isinstance(error, UnknownEvent):
        return not_found(request, error.message)
    return see_other(f"/events/{event_id}?{urlencode({'error': error.code, 'during': during})}")


async def _event_context(request: web.Request, state) -> dict:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    user_id = request[USER_KEY]
    published = None
    if state.published:
        entries = await asyncio.get_running_loop().run_in_executor(None, service.store.log, state.event_id)
        published = published_at(entries)
    view = event_view(state, user_id, now=time.time(), voting_period_s=settings.voting_period_s,
                      max_contributors=settings.max_contributors, published=published,
                      my_name=display_name(request))
    api = event_json(state, service.site, user_id, service.home_reachable(state))
    if view["vote"]["running"]:
        here = list(state.round.ballots) if state.round else []
        view["vote"].update(tally(view["vote"], api.get("vote"), view["who"], here))
    unreachable = {} if state.published else await request.app[PEER_WATCH].unreachable(request)
    return {
        "event": view,
        "outage": outage(state, service.site, unreachable, api.get("home_site_reachable")),
        "share_url": f"{settings.public_url(service.site)}/events/{state.event_id}",
        "public_url": f"{settings.public_url(service.site)}/public/{state.event_id}",
        "now_ms": int(time.time() * 1000),
        "max_bytes": settings.max_photo_bytes,
        "max_mb": f"{settings.max_photo_mb:g}",
        "sentences": sentences(settings.max_photo_mb, settings.max_contributors),
    }


async def event_page(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    try:
        state = await request.app[SERVICE].event_state(event_id)
    except UnknownEvent:
        return not_found(request, "There is no such event. Check the link you were given.")
    context = await _event_context(request, state)
    code = request.query.get("error", "")
    context["error"] = sentence(context["sentences"], code, request.query.get("during", ""))
    context["created"] = request.query.get("created") == "1"
    response = render(request, "event.html", context)
    remember(request, response, event_id, OPENED)
    return response


async def event_parts(request: web.Request) -> web.Response:
    """The live parts of the event page, rendered, for the page's script."""
    state = await request.app[SERVICE].event_state(request.match_info["event_id"])
    context = {**common(request), **await _event_context(request, state)}
    env = aiohttp_jinja2.get_env(request.app)
    parts = {name: env.get_template(f"parts/{name}.html").render(context) for name in PARTS}
    event = context["event"]
    return json_response({"phase": event["phase"], "version": event["version"],
                              "outage": bool(context["outage"]),
                              "upload": event["upload"], "now": context["now_ms"], "parts": parts},
                             headers={"Cache-Control": "no-store"})


async def upload_from_form(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    event_id = request.match_info["event_id"]
    try:
        await service.event_state(event_id)
        service.montages.expect(event_id)  # the page shows the version this upload makes next
        raw = await read_photo_parts(request, settings.max_photo_bytes)
        metas, base = await service.uploads.upload(event_id, request[USER_KEY], raw, name=display_name(request))
    except PhotoSessionError as e:
        return _refused(request, event_id, e, "upload")
    response = (json_response({"added": len(metas), "montage_version": base + len(metas)}, status=201)
                if wants_json(request) else _back_to(event_id))
    remember(request, response, event_id, OPENED)
    return response


async def vote_from_form(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    form = await read_form(request)
    version = str(form.get("montage_version", ""))
    try:
        answer = await request.app[SERVICE].voting.vote(event_id, request[USER_KEY],
                                                 int(version) if version.isdigit() else None,
                                                 form.get("decision"))
    except PhotoSessionError as e:
        return _refused(request, event_id, e, "vote")
    if wants_json(request):
        return json_response({"recorded": form.get("decision"), "round": answer.round})
    return _back_to(event_id)


async def photo_thumb(request: web.Request) -> web.Response:
    """A photo's thumbnail (made once at upload) for the grid; the same rule as the photo."""
    service = request.app[SERVICE]
    state = await service.event_state(request.match_info["event_id"])
    for_submitters(state, request[USER_KEY])
    match = photo_in(state, request.match_info["photo_id"])
    data = await asyncio.get_running_loop().run_in_executor(None, service.files.read, "thumb", match.thumb_sha256)
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": THUMB_CACHE})
