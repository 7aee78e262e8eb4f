"""Whether this site can reach each peer right now, cheaply enough to ask on every page view.

What the site-to-site traffic shows is taken as it comes (a batch answered, or not); a peer
nothing was sent to lately is pinged in the background (signed, with proof: web.peers.status),
at most once per `STALE_S`, and the answer is the last one known meanwhile. A change is
reported (`on_change(site)`), so open pages learn that the event's home site went away or came
back without reloading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

STALE_S = 2.0


class Reachability:
    def __init__(self, own_site: int, ping: Callable, on_change: Callable[[int], None]):
        self.own_site = own_site
        self.ping = ping  # async (site) -> PeerStatus
        self.on_change = on_change
        self._known: dict[int, bool] = {}
        self._heard_at: dict[int, float] = {}
        self._pinging: dict[int, asyncio.Task] = {}

    def heard(self, site: int, ok: bool) -> None:
        """On the loop: a request to `site` was answered (ok) or failed."""
        self._heard_at[site] = time.monotonic()
        if self._known.get(site, True) != ok:
            self._known[site] = ok
            self.on_change(site)
        self._known[site] = ok

    def reachable(self, site: int | None) -> bool:
        """The last known answer (this site, and a peer never heard of, count as reachable);
        a stale one is checked again in the background."""
        if site is None or site == self.own_site:
            return True
        if time.monotonic() - self._heard_at.get(site, 0.0) > STALE_S and site not in self._pinging:
            task = asyncio.get_running_loop().create_task(self._check(site))
            self._pinging[site] = task
            task.add_done_callback(lambda _: self._pinging.pop(site, None))
        return self._known.get(site, True)

    async def _check(self, site: int) -> None:
        status = await self.ping(site)
        self.heard(site, status.reachable)
