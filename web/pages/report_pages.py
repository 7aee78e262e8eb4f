"""Pages that report: the published montage for anyone, the audit of an event across every
site, and this site's status."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from datetime import datetime

from aiohttp import web

from domain.errors import UnknownEvent
from eventstore.collage import FULL, SCREEN
from web.event_view import published_at
from web.keys import SERVICE, SETTINGS
from web.pages.audit_traces import (
    VOTES,
    attempts,
    names_in,
    transactions,
    with_restarts,
)
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
    version = state.published_version
    screen, full = [await service.montages.size(state, version, r) for r in (SCREEN, FULL)]
    return render(request, "public.html", {
        "title": state.title,
        "event_id": event_id,
        "photo_count": state.published_version,
        "people_count": len({p.submitter for p in state.photos[:state.published_version]}),
        "published_iso": when.isoformat(timespec="seconds") if when else "",
        "published_text": when.strftime("%-d %b %Y, %H:%M UTC") if when else "",
        "public_url": f"{base}/public/{event_id}",
        "image_url": f"{base}/public/{event_id}/montage.jpg",
        "screen": {"width": screen[0], "height": screen[1]},
        "full": {"width": full[0], "height": full[1]},
        "download_name": keepsake_file_name(state.title),
    })


def keepsake_file_name(title: str) -> str:
    """A file name a person recognises among their downloads: the title, made safe."""
    words = re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower())
    stem = "-".join(words)[:60].strip("-")
    return f"{stem}-keepsake.jpg" if stem else "keepsake.jpg"


async def audit_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    try:
        state = await service.event_state(event_id)
    except UnknownEvent:
        return not_found(request, "There is no such event.")
    logs, starts = await all_logs(service, event_id)
    names = names_in(logs)
    unavailable = {s for s, entries in logs.items() if entries is None}
    groups = []
    for tries in attempts(transactions(logs, names)):
        def drawn(trace):
            trace = with_restarts(trace, starts)
            return {"trace": trace, "svg": draw(trace, logs.keys(), unavailable)}
        groups.append({**drawn(tries.last), "earlier": [drawn(t) for t in tries.earlier],
                       "conflicts": tries.conflicts, "open": _worth_opening(tries.last)})
    restarts = [{"site": s, **start, "time": datetime.fromisoformat(start["at"]).strftime("%H:%M:%S")}
                for s, found in starts.items() for start in found]
    return render(request, "audit.html", {
        "title": state.title, "event_id": event_id, "groups": groups, "restarts": restarts,
        "rows": timeline(logs, names, starts), "unavailable": sorted(unavailable), "sites": list(logs)})


PEER_PROBLEMS = {
    "down": "It does not answer: it may be stopped, restarting, or cut off from this site.",
    "refused our signature": "It refuses this site's requests: the sites were set up with different secrets.",
    "clock skew": "Its clock and this site's disagree by too much, so it refuses this site's requests.",
    "TLS": "The secure connection to it failed (certificates).",
}
PEER_CONSEQUENCE = ("Until it is back, no photos can be added to any event (every photo is kept on every "
                    "site), and rounds wait for it to count their votes; votes already cast are kept.")


def peer_words(problem: str | None) -> str:
    """A peer's problem (web.peers.status) as what it means, for a person."""
    if problem is None:
        return ""
    cause = next((text for prefix, text in PEER_PROBLEMS.items() if problem.startswith(prefix)),
                 "It does not answer as a site of this deployment should.")
    return f"{cause} {PEER_CONSEQUENCE}"


def _worth_opening(trace) -> bool:
    """A diagram shown open: a vote round's, or one that did not simply commit."""
    return trace.tone != "good" or trace.key.startswith(VOTES) or trace.attempt_of.split(" ")[0] in (
        "StartRound", "Publish")


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
        "peers": [{**p.as_json(settings.site_url(p.site)), "words": peer_words(p.problem)} for p in peers],
        "event_count": len(service.existing),
        "counted": len(counted),
        "phases": phases,
        "in_doubt": sorted(service.in_doubt.items()),
    })
