"""Which peers this site can reach now, as the event page tells its readers (web.pages.outage).

A signed ping of every peer (web.peers.status), kept for a few seconds: a page and its live
parts, fetched often by many readers, cost at most one round of pings per site per period.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from web.keys import SERVICE, SETTINGS
from web.peers.status import PeerStatus, check_peers

FRESH_S = 3.0


class PeerWatch:
    def __init__(self):
        self._checked_at = float("-inf")
        self._peers: list[PeerStatus] = []
        self._lock = asyncio.Lock()

    async def unreachable(self, request: web.Request) -> dict[int, str]:
        """{site: its problem in words} for every peer that did not answer lately."""
        async with self._lock:  # one round of pings at a time; the others wait for its answer
            if time.monotonic() - self._checked_at > FRESH_S:
                service = request.app[SERVICE]
                self._peers = await check_peers(service.transport.session, request.app[SETTINGS], service.site)
                self._checked_at = time.monotonic()
        return {p.site: p.problem or "" for p in self._peers if not p.reachable}


PEER_WATCH = web.AppKey("peer_watch", PeerWatch)


def setup_peer_watch(app: web.Application) -> None:
    app[PEER_WATCH] = PeerWatch()
