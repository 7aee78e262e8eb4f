"""Plain HTML pages: create an event, upload to it, see its montage. (The full experience with
live updates is a later piece of work; these pages only need forms and links.)"""

from __future__ import annotations

import asyncio
import json
from html import escape
from urllib.parse import quote, urlsplit

from aiohttp import web

from domain.errors import PhotoSessionError
from web.errors import STATUS
from web.identity import USER_KEY
from web.keys import SERVICE, SETTINGS
from web.uploads import read_photo_parts

STYLE = """body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1f;background:#fafafa}img{max-width:100%;height:auto}label{display:block;margin:.5rem 0}
.error{color:#a0001a}code{background:#eee;padding:.1rem .3rem}"""


def page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", status=status)


def origin_check_middleware(settings):
    """A state-changing request that carries a foreign Origin is refused (CSRF)."""
    allowed = {urlsplit(settings.site_url(s)).netloc for s in settings.sites}
    allowed |= {f"localhost:{settings.site_port(s)}" for s in settings.sites}

    @web.middleware
    async def middleware(request: web.Request, handler):
        origin = request.headers.get("Origin")
        if request.method not in ("GET", "HEAD", "OPTIONS") and origin and origin != "null":
            if urlsplit(origin).netloc not in allowed:
                return web.json_response(
                    {"error": "forbidden_origin", "message": "Cross-site requests are refused."},
                    status=403,
                )
        return await handler(request)

    return middleware


async def home(request: web.Request) -> web.Response:
    return page(
        "Photo sessions",
        "<h1>Photo sessions</h1><p>Make an event, share its link, and let everyone add photos.</p>"
        "<form method=post action=/events><label>Title <input name=title required maxlength=200>"
        "</label><button>Create event</button></form>",
    )


async def create_from_form(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        event_id = await request.app[SERVICE].create_event(form.get("title"))
    except PhotoSessionError as e:
        return page("Not created", f"<p class=error>{escape(e.message)}</p><a href=/>Back</a>",
                    STATUS.get(type(e), 400))
    raise web.HTTPSeeOther(f"/events/{event_id}")


async def event_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    try:
        state = await service.event_state(event_id)
    except PhotoSessionError as e:
        return page("Unknown event", f"<p class=error>{escape(e.message)}</p>", 404)
    mine = request[USER_KEY] in state.submitters
    link = f"{service.settings.site_url(service.site)}/events/{event_id}"
    montage = (
        f"<h2>Montage, version {state.version}</h2>"
        f"<img alt='Montage of {state.version} photos' src='/events/{event_id}/montage.jpg?v={state.version}'>"
        if mine and state.version
        else f"<p>{state.version} photo(s) so far. Add one to see the montage.</p>"
    )
    error = request.query.get("error", "")
    return page(
        state.title,
        f"<h1>{escape(state.title)}</h1><p>Share this link: <code>{escape(link)}</code></p>"
        f"<p>State: <strong>{state.phase}</strong>{_outcome_text(state)}</p>"
        + (f"<p class=error role=alert>{escape(error)}</p>" if error else "")
        + _upload_or_public(state, event_id) + montage + (_vote_form(state, event_id) if mine else ""),
    )


def _outcome_text(state) -> str:
    last = state.last_outcome
    if last is None:
        return ""
    why = f" ({last.reason})" if last.reason else ""
    return f" &middot; round {last.round} {last.outcome}{why}"


def _upload_or_public(state, event_id: str) -> str:
    if state.published:
        return f"<p>Published: <a href='/public/{event_id}'>the public montage</a></p>"
    if state.round is not None:
        return "<p>Uploads are paused while the vote runs.</p>"
    return (f"<form method=post enctype=multipart/form-data action='/events/{event_id}/photos'>"
            "<label>Photos <input type=file name=photo accept='image/*' multiple required></label>"
            "<button>Upload</button></form>")


def _vote_form(state, event_id: str) -> str:
    if state.published or not state.version:
        return ""
    current = state.round
    version = current.version if current else state.version
    status = (f"<p>Round {current.round}: {current.accepted} of {len(current.submitters)} "
              f"accepted here.</p>" if current else "<p>Accepting starts a vote.</p>")
    return (f"{status}<form method=post action='/events/{event_id}/votes'>"
            f"<input type=hidden name=montage_version value={version}>"
            "<button name=decision value=accept>Accept</button> "
            "<button name=decision value=reject>Reject</button></form>")


async def vote_from_form(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    form = await request.post()
    version = form.get("montage_version", "")
    try:
        await request.app[SERVICE].vote(event_id, request[USER_KEY],
                                        int(version) if version.isdigit() else None, form.get("decision"))
    except PhotoSessionError as e:
        raise web.HTTPSeeOther(f"/events/{event_id}?error={quote(e.message)}") from None
    raise web.HTTPSeeOther(f"/events/{event_id}")


async def upload_from_form(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    event_id = request.match_info["event_id"]
    try:
        await service.event_state(event_id)
        raw = await read_photo_parts(request, settings.max_photo_bytes)
        await service.upload(event_id, request[USER_KEY], raw)
    except PhotoSessionError as e:
        raise web.HTTPSeeOther(f"/events/{event_id}?error={quote(e.message)}") from None
    raise web.HTTPSeeOther(f"/events/{event_id}")


async def public_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    try:
        state = await service.event_state(event_id)
    except PhotoSessionError:
        state = None
    if state is None or not state.published:
        return page("Not published", "<p>This event's montage is not published.</p>", 404)
    src = f"/public/{event_id}/montage.jpg"
    return page(state.title, f"<h1>{escape(state.title)}</h1>"
                f"<img alt='The published montage' src='{src}'><p><a href='{src}' download>Download</a></p>")


async def audit_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    try:
        await service.event_state(event_id)
    except PhotoSessionError as e:
        return page("Unknown event", f"<p class=error>{escape(e.message)}</p>", 404)
    entries = await asyncio.get_running_loop().run_in_executor(None, service.store.log, event_id)
    rows = "".join(
        f"<tr><td>{e.at.isoformat(timespec='milliseconds')}</td><td>{e.role}</td><td>{e.type}</td>"
        f"<td><code>{escape(json.dumps(e.data))}</code></td></tr>" for e in entries)
    return page("Audit", f"<h1>Log of this event at site {service.site}</h1>"
                "<table><tr><th>at</th><th>role</th><th>record</th><th>data</th></tr>"
                f"{rows}</table>")


async def status_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    doubt = "".join(f"<li><code>{escape(t)}</code> on event {escape(e)}</li>"
                    for e, t in sorted(service.in_doubt.items())) or "<li>none</li>"
    return page("Status", f"<h1>Site {service.site}</h1><p>{len(service.existing)} events.</p>"
                f"<h2>In doubt</h2><ul>{doubt}</ul><p><a href=/api/status>Peers (JSON)</a></p>")


def setup_page_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_post("/events", create_from_form)
    app.router.add_get("/events/{event_id}", event_page)
    app.router.add_post("/events/{event_id}/photos", upload_from_form)
    app.router.add_post("/events/{event_id}/votes", vote_from_form)
    app.router.add_get("/events/{event_id}/audit", audit_page)
    app.router.add_get("/public/{event_id}", public_page)
    app.router.add_get("/status", status_page)
