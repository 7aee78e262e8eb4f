"""A site's montages as pages ask for them: served from their files, built on the montage
threads (never on the loop), and built ahead as versions commit where someone will look.

eventstore.montage's MontageCache draws and keeps the files; this decides when, from the
loop: what a commit makes wanted next, one build ahead per event at a time, and only at a
site whose pages are about to ask for it (`_looked_for`). Elsewhere a request builds it.

A commit to a calm event is built at once. One to a busy event waits until the event's commits
settle (SETTLE_QUIET_S without one, SETTLE_MAX_S at most), and only the latest is built: busy is
when more of its uploads are arriving here (each is about to commit, superseding this version),
or when versions were committed while the last build ran (a hot event commits several a
second). So a burst costs a build or two per site, not one per commit, and none of them
competes with the burst itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from domain.event_state import EventState
from eventstore.collage import FULL, SCREEN, Rendition
from eventstore.montage import MontageCache

log = logging.getLogger(__name__)
LOOKED_S = 600.0  # a montage served here this recently: its next versions are built ahead too
LOOKED_KEPT = 4096  # events whose montage was served lately, remembered (least recent go)
SETTLE_QUIET_S = 0.25  # a busy event's next build ahead waits for this long without a commit
SETTLE_MAX_S = 2.0  # but no longer than this after it got busy


class Montages:
    def __init__(self, loop: asyncio.AbstractEventLoop, cache: MontageCache, site: int | None = None,
                 clock: Callable[[], float] = time.monotonic, settle_quiet_s: float = SETTLE_QUIET_S,
                 settle_max_s: float = SETTLE_MAX_S):
        self.loop = loop
        self.cache = cache
        self.site = site  # None: every commit is built ahead here (a site of its own)
        self.clock = clock
        self.settle_quiet_s, self.settle_max_s = settle_quiet_s, settle_max_s
        self.watched: Callable[[str], bool] = lambda event_id: False  # live readers here
        # whether uploads of the event are being checked, stored or shipped here (web.uploading)
        self.arriving: Callable[[str], bool] = lambda event_id: False
        # event -> None while a montage of it is built ahead, or the latest state to build next
        # (once the build ends, or once the event's commits settle)
        self._pending: dict[str, EventState | None] = {}
        # event -> (when its settling ends at the latest, the timer that ends it)
        self._settling: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._looked: OrderedDict[str, float] = OrderedDict()  # event -> when a montage was served

    def committed(self, state: EventState) -> None:
        """Build, off the loop, what pages are about to ask for: the latest committed version's
        screen rendition, and once published the full keepsake (the public page's download).

        One build ahead per event at a time: versions committed meanwhile (a hot event commits
        several a second) are skipped, and the latest is built once they settle; a request for a
        skipped version builds it then (`bytes`), as at a site where no one looked (`_looked_for`).
        A version committed while more of the event's uploads are arriving here waits to settle
        too: they are about to supersede it."""
        if not self._looked_for(state):
            return
        event_id = state.event_id
        if event_id in self._pending:
            before, self._pending[event_id] = self._pending[event_id], state
            settling = self._settling.get(event_id)
            if settling is not None and state.version != before.version:  # the quiet starts again
                self._settle(event_id, settling[0])
            return
        missing = self._missing(state)
        if missing and self.arriving(event_id):
            self._pending[event_id] = state
            self._settle(event_id, self.loop.time() + self.settle_max_s)
        elif missing:
            self._build_ahead(state, missing)

    def _missing(self, state: EventState) -> list[tuple[int, Rendition]]:
        """The montages of this state that pages are about to ask for and that are not built."""
        wanted = [(state.version, SCREEN)]
        if state.published:
            wanted = [(state.published_version, SCREEN), (state.published_version, FULL)]
        return [(version, rendition) for version, rendition in wanted if _shas(state, version) and
                not self.cache.has(state.event_id, _shas(state, version), rendition, _thumbs(state, version))]

    def _build_ahead(self, state: EventState, missing: list[tuple[int, Rendition]]) -> None:
        builds = [self.loop.run_in_executor(self.cache.pool(rendition), self.build, state, version, rendition)
                  for version, rendition in missing]
        self._pending[state.event_id] = None
        asyncio.gather(*builds, return_exceptions=True).add_done_callback(
            lambda built, event_id=state.event_id: self._built(event_id, built))

    def _looked_for(self, state: EventState) -> bool:
        """Whether pages here are about to ask for this state's montage: once published (its
        keepsake is everyone's download), when someone reads the event live here, when one of
        its montages was served here lately, or when its page here is uploading to it (`expect`:
        the page shows the new version next). Not for an upload through the JSON API alone: no
        page of it is open here, and a client that asks later has it built then. A screen
        montage costs a few ms per photo to draw, four times over if every site drew every
        version; most versions are seen at one site, many at none."""
        if state.published or self.site is None or self.watched(state.event_id):
            return True
        looked = self._looked.get(state.event_id)
        return looked is not None and self.clock() - looked < LOOKED_S

    def sized(self, files) -> None:
        """(kind, sha256, bytes, (width, height)) of files made here (an upload's photo and
        thumbnail): their montages are drawn without reading their sizes back off the disk."""
        for _, sha, _, size in files:
            self.cache.know_size(sha, size)

    def expect(self, event_id: str) -> None:
        """The event's page here is about to ask for its montage (it is uploading to it): the
        versions that commit from now on are built ahead here, as if a montage had been served."""
        self._served(event_id)

    def _served(self, event_id: str) -> None:
        self._looked[event_id] = self.clock()
        self._looked.move_to_end(event_id)
        while len(self._looked) > LOOKED_KEPT:
            self._looked.popitem(last=False)

    def _built(self, event_id: str, built: asyncio.Future) -> None:
        if built.cancelled():  # the site is stopping
            return
        for result in built.result():
            if isinstance(result, Exception):
                # Not fatal: a request for it builds it again (and answers the error, if it lasts).
                log.warning("montage not built ahead: %r", result)
        if self._pending.get(event_id) is None:
            self._pending.pop(event_id, None)
        else:  # committed while this was built: a busy event, built again once it settles
            self._settle(event_id, self.loop.time() + self.settle_max_s)

    def _settle(self, event_id: str, latest: float) -> None:
        """Build the event's latest state ahead once no commit came for settle_quiet_s, or at
        `latest` (loop time)."""
        if event_id in self._settling:
            self._settling[event_id][1].cancel()
        at = min(self.loop.time() + self.settle_quiet_s, latest)
        self._settling[event_id] = (latest, self.loop.call_at(at, self._settled, event_id))

    def _settled(self, event_id: str) -> None:
        """Its commits settled (or settle_max_s passed): the latest state is built now, even
        if uploads still arrive."""
        del self._settling[event_id]
        latest = self._pending.pop(event_id)
        missing = self._missing(latest)
        if missing:
            self._build_ahead(latest, missing)

    def build(self, state: EventState, version: int, rendition: Rendition = FULL) -> bytes:
        """On a montage thread: the montage of `version`, from its file or drawn."""
        return self.cache.get(state.event_id, _shas(state, version), rendition, _thumbs(state, version))

    async def bytes(self, state: EventState, version: int, rendition: Rendition = FULL) -> bytes:
        """The montage from its file, or built on the montage threads."""
        self._served(state.event_id)
        data = await self.loop.run_in_executor(None, self.cache.cached, state.event_id,
                                               _shas(state, version), rendition, _thumbs(state, version))
        if data is not None:
            return data
        return await self.loop.run_in_executor(self.cache.pool(rendition), self.build, state, version, rendition)

    async def size(self, state: EventState, version: int, rendition: Rendition) -> tuple[int, int]:
        """(width, height) of a montage, from the photos' headers, without drawing it."""
        layout = await self.loop.run_in_executor(None, self.cache.layout, _shas(state, version), rendition)
        return layout.width, layout.height


def _shas(state: EventState, version: int) -> list[str]:
    return [p.sha256 for p in state.photos[:version]]


def _thumbs(state: EventState, version: int) -> list[str]:
    return [p.thumb_sha256 for p in state.photos[:version]]
