"""Live updates: `GET /api/events/{id}/stream` (server-sent events).

Each time this site's participant stores something for the event (a photo committed, a vote
recorded, a round started or ended), every open stream of that event gets the event as its
reader may see it. Slow readers never hold the site back: a reader keeps only the latest state.
The stream's framing, its keep-alive pings and its stalled-reader timeout are aiohttp-sse's.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from domain.event_state import EventState
from web.identity import USER_KEY
from web.json_codec import dumps
from web.keys import SERVICE, SITE
from web.views import event_json

HEARTBEAT_S = 15.0


def visible(state: EventState) -> tuple:
    """What readers see of an event (a prepared, undecided transaction is not news)."""
    return (state.photos, state.round, state.last_outcome, state.published_version)


class Subscribers:
    def __init__(self):
        self._queues: dict[str, set[asyncio.Queue]] = {}
        self._last: dict[str, tuple] = {}

    def publish(self, state: EventState, force: bool = False) -> None:
        """On the loop: hand the new state to every reader of the event (latest wins); `force`:
        even if it looks the same (something beside the state changed: a peer's reachability)."""
        seen = visible(state)
        if self._last.get(state.event_id) == seen and not force:
            return
        self._last[state.event_id] = seen
        for queue in self._queues.get(state.event_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(state)

    def watching(self, event_id: str) -> bool:
        """Whether someone reads the event live here."""
        return event_id in self._queues

    def events(self) -> list[str]:
        """The events someone reads live."""
        return list(self._queues)

    def close_all(self) -> None:
        """At shutdown: every open stream ends (None is the signal)."""
        for queues in self._queues.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)

    def subscribe(self, event_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._queues.setdefault(event_id, set()).add(queue)
        return queue

    def unsubscribe(self, event_id: str, queue: asyncio.Queue) -> None:
        queues = self._queues.get(event_id, set())
        queues.discard(queue)
        if not queues:
            self._queues.pop(event_id, None)


async def stream(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    event_id = request.match_info["event_id"]
    state = await service.event_state(event_id)
    user_id, site = request[USER_KEY], request.app[SITE]
    queue = service.subscribers.subscribe(event_id)
    response = EventSourceResponse(ping_interval=HEARTBEAT_S)
    try:
        await response.prepare(request)
        async with response:
            while state is not None:
                await response.send(dumps(event_json(state, site, user_id, service.home_reachable(state))),
                                    event="event")
                state = await _next_state(queue, response)
    except (ConnectionResetError, asyncio.CancelledError, TimeoutError):
        pass  # the reader went away (or stalled past the send timeout)
    finally:
        service.subscribers.unsubscribe(event_id, queue)
    return response


async def _next_state(queue: asyncio.Queue, response) -> EventState | None:
    """The next state to send, or None once the reader is gone (its pings stopped) or the site
    shuts down: a reader that left does not keep its handler waiting for the next change."""
    change = asyncio.ensure_future(queue.get())
    gone = asyncio.ensure_future(response.wait())
    try:
        await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not change.done():
            change.cancel()
    return change.result() if change.done() and not change.cancelled() else None


async def _close_streams(app: web.Application) -> None:
    app[SERVICE].subscribers.close_all()


def setup_live_routes(app: web.Application) -> None:
    app.router.add_get("/api/events/{event_id}/stream", stream)
    app.on_shutdown.append(_close_streams)
