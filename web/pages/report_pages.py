"""Pages that report: the published montage for anyone, the audit of an event across every
site, and this site's status."""

from __future__ import annotations

import asyncio

from aiohttp import web

from domain.errors import UnknownEvent
from web.event_view import published_at
from web.keys import SERVICE, SETTINGS
from web.pages.audit_traces import names_in, transactions
from web.pages.audit_view import all_logs, timeline
from web.pages.rendering import not_found, render
from web.pages.sequence_diagram import draw
from web.peers.status import check_peers

STATUS_EVENT_LIMIT = 500


async def public_page(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    event_id = request.match_info["event_id"]
    try:
        state = await service.event_state(event_id)
    except UnknownEvent:
        state = None
    if state is None or not state.published:
        return not_found(request, "This event's montage is not published (yet).")
    entries = await asyncio.get_running_loop().run_in_executor(None, service.store.log, event_id)
    when = published_at(entries)
    base = settings.public_url(service.site)
    return render(request, "public.html", {
        "title": state.title,
        "event_id": event_id,
        "photo_count": state.published_version,
        "people_count": len({p.submitter for p in state.photos[:state.published_version]}),
        "published_iso": when.isoformat(timespec="seconds") if when else "",
        "published_text": when.strftime("%-d %b %Y, %H:%M UTC") if when else "",
        "public_url": f"{base}/public/{event_id}",
        "image_url": f"{base}/public/{event_id}/montage.jpg",
    })


async def audit_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    try:
        state = await service.event_state(event_id)
    except UnknownEvent:
        return not_found(request, "There is no such event.")
    logs = await all_logs(service, event_id)
    names = names_in(logs)
    unavailable = {s for s, entries in logs.items() if entries is None}
    diagrams = [{"trace": t, "svg": draw(t, logs.keys(), unavailable)} for t in transactions(logs, names)]
    return render(request, "audit.html", {
        "title": state.title, "event_id": event_id, "diagrams": diagrams,
        "rows": timeline(logs, names), "unavailable": sorted(unavailable), "sites": list(logs)})


async def status_page(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    peers = await check_peers(service.transport.session, settings, service.site)
    counted = sorted(service.existing)[:STATUS_EVENT_LIMIT]
    states = await asyncio.gather(*(service.event_state(e) for e in counted), return_exceptions=True)
    phases = {"open": 0, "voting": 0, "published": 0}
    for state in states:
        if not isinstance(state, BaseException):
            phases[state.phase] += 1
    return render(request, "status.html", {
        "site_url": settings.site_url(service.site),
        "peers": [p.as_json(settings.site_url(p.site)) for p in peers],
        "event_count": len(service.existing),
        "counted": len(counted),
        "phases": phases,
        "in_doubt": sorted(service.in_doubt.items()),
    })
