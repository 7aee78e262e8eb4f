"""Plain HTML pages: create an event, upload to it, see its montage. (The full experience with
live updates is a later piece of work; these pages only need forms and links.)"""

from __future__ import annotations

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
        + (f"<p class=error role=alert>{escape(error)}</p>" if error else "")
        + f"<form method=post enctype=multipart/form-data action='/events/{event_id}/photos'>"
        "<label>Photos <input type=file name=photo accept='image/*' multiple required></label>"
        "<button>Upload</button></form>" + montage,
    )


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
    return page("Not published", "<p>This event's montage is not published.</p>", 404)


def setup_page_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_post("/events", create_from_form)
    app.router.add_get("/events/{event_id}", event_page)
    app.router.add_post("/events/{event_id}/photos", upload_from_form)
    app.router.add_get("/public/{event_id}", public_page)
