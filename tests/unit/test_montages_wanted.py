"""Which sites build a screen montage ahead as versions commit: only those whose pages are
about to ask for it (the site whose event page uploads to it, one with live readers of the
event, one that served a montage of it lately, or any once it is published); elsewhere, and for
an upload through the JSON API alone, a request builds it.
A busy event's next build ahead waits until its commits settle."""

from __future__ import annotations

import asyncio
import threading
import time

from domain.event_state import EventState
from domain.messages import PhotoMeta
from web.montages import LOOKED_S, Montages

HERE = 1


class Cache:
    """Stands in for eventstore.montage.MontageCache: nothing is cached, builds are counted."""

    def __init__(self):
        self.built: list[tuple[str, int, str]] = []

    def has(self, event_id, shas, rendition, thumb_shas=()) -> bool:
        return False

    def pool(self, rendition):
        return None  # the loop's default executor

    def get(self, event_id, shas, rendition, thumb_shas=()) -> bytes:
        self.built.append((event_id, len(shas), rendition.name))
        return b"\xff\xd8"

    def cached(self, event_id, shas, rendition, thumb_shas=()):
        return b"\xff\xd8"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(event_id: str, *sites: int, published: bool = False) -> EventState:
    photos = tuple(PhotoMeta(f"p{n}", f"{n:064x}", f"{n + 100:064x}", f"user{n}", site)
                   for n, site in enumerate(sites))
    return EventState(event_id, exists=True, photos=photos,
                      published_version=len(photos) if published else None)


async def built_after(montages: Montages, *states: EventState) -> list:
    for s in states:
        montages.committed(s)
    for _ in range(100):  # the builds run on executor threads; wait until none is pending
        if not montages._pending:
            break
        await asyncio.sleep(0.01)
    assert not montages._pending
    return montages.cache.built


def montages(clock=None) -> Montages:
    return Montages(asyncio.get_running_loop(), Cache(), HERE, clock or Clock())


async def test_a_version_whose_newest_photo_came_from_another_site_is_not_built_ahead():
    m = montages()
    assert await built_after(m, state("e1", HERE, 2), state("e2", 3)) == []


async def test_a_version_uploaded_here_through_the_api_alone_is_not_built_ahead():
    m = montages()
    assert await built_after(m, state("e1", 2, HERE)) == []


async def test_an_event_whose_page_here_uploads_to_it_is_built_ahead_until_it_is_not_looked_at():
    clock = Clock()
    m = montages(clock)
    m.expect("e1")  # its page here is uploading
    assert await built_after(m, state("e1", 2, HERE), state("e2", HERE)) == [("e1", 2, "screen")]
    clock.now += LOOKED_S + 1
    assert await built_after(m, state("e1", 2, HERE, HERE)) == [("e1", 2, "screen")]


async def test_an_event_read_live_here_is_built_ahead_whoever_uploaded():
    m = montages()
    m.watched = lambda event_id: event_id == "e1"
    assert await built_after(m, state("e1", 2), state("e2", 2)) == [("e1", 1, "screen")]


async def test_an_event_whose_montage_was_served_here_lately_is_built_ahead_until_it_is_not_looked_at():
    clock = Clock()
    m = montages(clock)
    await m.bytes(state("e1", 2), 1)  # a page here asked for version 1
    assert await built_after(m, state("e1", 2, 3)) == [("e1", 2, "screen")]
    clock.now += LOOKED_S + 1
    assert await built_after(m, state("e1", 2, 3, 0)) == [("e1", 2, "screen")]


async def test_a_published_event_is_built_ahead_everywhere_keepsake_included():
    m = montages()
    built = await built_after(m, state("e1", 2, 3, published=True))
    assert sorted(built) == [("e1", 2, "full"), ("e1", 2, "screen")]


class HeldCache(Cache):
    """Each build waits until `release` is set (on its executor thread)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def get(self, event_id, shas, rendition, thumb_shas=()) -> bytes:
        assert self.release.wait(10), "never released"
        return super().get(event_id, shas, rendition, thumb_shas)


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.005)


def busy_event(quiet_s: float, max_s: float = 60.0) -> Montages:
    """Version 1 being built ahead while versions 2 and 3 commit."""
    m = Montages(asyncio.get_running_loop(), HeldCache(), HERE, Clock(), settle_quiet_s=quiet_s, settle_max_s=max_s)
    m.expect("e1")  # its page here uploads to it
    for n in range(1, 4):
        m.committed(state("e1", *[HERE] * n))
    return m


async def test_a_commit_to_a_calm_event_is_built_ahead_at_once():
    m = Montages(asyncio.get_running_loop(), Cache(), HERE, Clock(), settle_quiet_s=60.0, settle_max_s=60.0)
    m.expect("e1")
    assert await built_after(m, state("e1", HERE)) == [("e1", 1, "screen")]


async def test_versions_committed_during_a_build_wait_until_the_events_commits_settle():
    m = busy_event(quiet_s=60.0)
    m.cache.release.set()
    await until(lambda: "e1" in m._settling, "version 1 built and the event settling")
    m.committed(state("e1", *[HERE] * 4))  # another commit meanwhile: still settling
    assert m.cache.built == [("e1", 1, "screen")]
    assert "e1" in m._settling and m._pending["e1"].version == 4


async def test_once_a_busy_events_commits_settle_only_its_latest_version_is_built():
    m = busy_event(quiet_s=0.01)
    m.committed(state("e1", *[HERE] * 4))
    m.cache.release.set()
    await until(lambda: len(m.cache.built) == 2, "the latest version built")
    assert m.cache.built == [("e1", 1, "screen"), ("e1", 4, "screen")]
    await until(lambda: not m._pending and not m._settling, "nothing left to build")


async def test_an_event_that_keeps_committing_is_built_ahead_after_settle_max_s_all_the_same():
    m = busy_event(quiet_s=60.0, max_s=0.05)
    m.cache.release.set()
    await until(lambda: "e1" in m._settling, "version 1 built and the event settling")
    m.committed(state("e1", *[HERE] * 4))  # restarts the quiet, but not past settle_max_s
    await until(lambda: len(m.cache.built) == 2, "the latest version built")
    assert m.cache.built == [("e1", 1, "screen"), ("e1", 4, "screen")]


async def test_a_version_committed_while_more_uploads_of_the_event_arrive_here_waits_for_them_to_settle():
    m = Montages(asyncio.get_running_loop(), Cache(), HERE, Clock(), settle_quiet_s=60.0, settle_max_s=60.0)
    m.arriving = lambda event_id: event_id == "e1"
    m.expect("e1")
    m.expect("e2")
    m.committed(state("e1", HERE))
    m.committed(state("e1", HERE, HERE))
    m.committed(state("e2", HERE))  # no upload of it arriving: built at once
    await until(lambda: "e2" not in m._pending, "e2 built")
    assert m.cache.built == [("e2", 1, "screen")]
    assert "e1" in m._settling and m._pending["e1"].version == 2


async def test_once_an_events_commits_settle_its_latest_version_is_built_though_uploads_still_arrive():
    m = Montages(asyncio.get_running_loop(), Cache(), HERE, Clock(), settle_quiet_s=0.01, settle_max_s=60.0)
    m.arriving = lambda event_id: True
    m.expect("e1")
    m.committed(state("e1", HERE))
    m.committed(state("e1", HERE, HERE))
    await until(lambda: m.cache.built, "the latest version built")
    await until(lambda: not m._pending and not m._settling, "nothing left to build")
    assert m.cache.built == [("e1", 2, "screen")]
