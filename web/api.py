"""The JSON API of API.md: thin handlers that parse, call one use case, and answer."""

from __future__ import annotations

import asyncio

from aiohttp import web

from domain.errors import InvalidRequest, UnknownEvent
from web import lifecycle
from web.display_name import clean_name, display_name, remember_name
from web.identity import USER_KEY
from web.json_codec import json_response, loads
from web.keys import SERVICE, SETTINGS, SITE
from web.openapi import openapi
from web.peers.status import check_peers
from web.service import valid_event_id
from web.uploads import read_photo_parts
from web.views import event_json, iso, photo_json

MAX_JSON = 64 * 1024


async def read_json(request: web.Request) -> dict:
    body = await request.content.read(MAX_JSON + 1)
    if len(body) > MAX_JSON:
        raise InvalidRequest("The request body is too large.")
    try:
        data = loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is bad input too
        raise InvalidRequest("The body must be JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


async def create_event(request: web.Request) -> web.Response:
    data = await read_json(request)
    event_id = await request.app[SERVICE].create_event(data.get("title"))
    body = {"event_id": event_id, "url": f"/events/{event_id}", "home_site": request.app[SITE]}
    return json_response(body, status=201)


async def read_event(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    state = await service.event_state(request.match_info["event_id"])
    return json_response(event_json(state, request.app[SITE], request[USER_KEY],
                                        service.home_reachable(state)))


async def upload_photos(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    event_id = request.match_info["event_id"]
    await service.event_state(event_id)  # 404 before reading a large body
    raw_files = await read_photo_parts(request, settings.max_photo_bytes, only_photos=True)
    metas, base = await service.uploads.upload(event_id, request[USER_KEY], raw_files, name=display_name(request))
    return json_response(
        {
            "photos": [photo_json(m, base + i) for i, m in enumerate(metas, 1)],
            "montage_version": base + len(metas),
        },
        status=201,
    )


async def vote(request: web.Request) -> web.Response:
    data = await read_json(request)
    answer = await request.app[SERVICE].voting.vote(
        request.match_info["event_id"], request[USER_KEY], data.get("montage_version"), data.get("decision")
    )
    return json_response(
        {"recorded": data["decision"], "round": answer.round, "deadline": iso(answer.deadline)}
    )


async def me(request: web.Request) -> web.Response:
    return json_response({"user_id": request[USER_KEY], "display_name": display_name(request) or None})


async def set_me(request: web.Request) -> web.Response:
    name = clean_name((await read_json(request)).get("display_name"))
    response = json_response({"user_id": request[USER_KEY], "display_name": name or None})
    remember_name(request, response, name)
    return response


async def status(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    peers = await check_peers(service.transport.session, settings, service.site)
    return json_response(
        {
            "site": service.site,
            "url": settings.site_url(service.site),
            "peers": [p.as_json(settings.site_url(p.site)) for p in peers],
            "events": len(service.existing),
            "in_doubt": [{"event_id": e, "txn_id": t} for e, t in sorted(service.in_doubt.items())],
            "storage": await service.storage_status(),
            "alarms": [{"event_id": a.event_id, "txn_id": a.txn_id, "problem": a.problem}
                       for _, a in sorted(service.alarms.items())],
        }
    )


async def audit(request: web.Request) -> web.Response:
    """Every record stored here for the event, also when its creation aborted here (the audit
    CLI compares the sites' logs, disagreements included); 404 when this site logged nothing."""
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    logged = event_id in service.actors.logged or event_id in service.actors.coordinated
    if not valid_event_id(event_id) or not logged:
        raise UnknownEvent()
    entries = await asyncio.get_running_loop().run_in_executor(None, service.store.log, event_id)
    return json_response(
        {
            "site": service.site,
            "event_id": event_id,
            "entries": [
                {"at": e.at.isoformat(), "role": e.role, "type": e.type, "data": e.data}
                for e in entries
            ],
            # this site's (re)starts since the event's first record here (web.lifecycle)
            "starts": lifecycle.starts(service.settings.site_dir(service.site),
                                       entries[0].at if entries else None),
        }
    )


def setup_api_routes(app: web.Application) -> None:
    app.router.add_post("/api/events", create_event)
    app.router.add_get("/api/events/{event_id}", read_event)
    app.router.add_post("/api/events/{event_id}/photos", upload_photos)
    app.router.add_post("/api/events/{event_id}/votes", vote)
    app.router.add_get("/api/events/{event_id}/audit", audit)
    app.router.add_get("/api/me", me)
    app.router.add_post("/api/me", set_me)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/openapi.json", openapi)
