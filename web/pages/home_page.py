"""The home page: create an event, see your events, set your name."""

from __future__ import annotations

import asyncio

from aiohttp import web

from domain.errors import PhotoSessionError
from web.display_name import clean_name, remember_name
from web.forms import read_form
from web.identity import USER_KEY
from web.json_codec import json_response
from web.keys import SERVICE, SETTINGS
from web.pages.my_events import CREATED, remember, remembered
from web.pages.rendering import render, see_other, wants_json
from web.pages.sentences import sentence, sentences


async def _my_events(request: web.Request) -> list[dict]:
    service, user_id = request.app[SERVICE], request[USER_KEY]
    entries = remembered(request)
    states = await asyncio.gather(*(service.event_state(e) for e, _ in entries), return_exceptions=True)
    mine = []
    for (event_id, kind), state in zip(entries, states):
        if isinstance(state, BaseException):
            continue
        contributed = user_id in state.submitters
        if kind == CREATED or contributed:
            roles = [r for r, yes in (("created", kind == CREATED), ("contributed", contributed)) if yes]
            mine.append({"event_id": event_id, "title": state.title, "phase": state.phase,
                         "photo_count": state.version, "roles": " and ".join(roles)})
    return mine


def _why(request: web.Request, error: PhotoSessionError) -> str:
    settings = request.app[SETTINGS]
    table = sentences(settings.max_photo_mb, settings.max_contributors)
    return sentence(table, error.code, "create") or error.message


async def home(request: web.Request) -> web.Response:
    return render(request, "home.html", {"events": await _my_events(request)})


async def create_from_form(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    form = await read_form(request)
    try:
        event_id = await service.create_event(form.get("title"))
    except PhotoSessionError as e:
        if wants_json(request):
            raise
        return render(request, "home.html", {"events": await _my_events(request), "error": _why(request, e),
                                             "title_value": form.get("title", "")}, status=400)
    if wants_json(request):
        state = await service.event_state(event_id)
        url = f"{service.settings.public_url(service.site)}/events/{event_id}"
        response = json_response({"event_id": event_id, "url": f"/events/{event_id}",
                                      "share_url": url, "title": state.title}, status=201)
    else:
        response = see_other(f"/events/{event_id}?created=1")
    remember(request, response, event_id, CREATED)
    return response


async def name_from_form(request: web.Request) -> web.Response:
    form = await read_form(request)
    back = str(form.get("next", "/"))
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    name = clean_name(form.get("display_name", ""))
    response = (json_response({"display_name": name or None}) if wants_json(request)
                else see_other(back))
    remember_name(request, response, name)
    return response
