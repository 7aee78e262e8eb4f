"""Live updates: `GET /api/events/{id}/stream` (server-sent events).

Each time this site's participant stores something for the event (a photo committed, a vote
recorded, a round started or ended), every open stream of that event gets the event as its
reader may see it. Slow readers never hold the site back: a reader keeps only the latest state.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from domain.event_state import EventState
from web.identity import USER_KEY
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
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    queue = service.subscribers.subscribe(event_id)
    try:
        while state is not None:
            data = json.dumps(event_json(state, site, user_id, service.home_reachable(state)))
            await response.write(f"event: event\ndata: {data}\n\n".encode())
            while True:
                try:
                    state = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                    break
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        service.subscribers.unsubscribe(event_id, queue)
    return response


async def _close_streams(app: web.Application) -> None:
    app[SERVICE].subscribers.close_all()


def setup_live_routes(app: web.Application) -> None:
    app.router.add_get("/api/events/{event_id}/stream", stream)
    app.on_shutdown.append(_close_streams)
