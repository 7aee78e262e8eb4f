"""Which sites build a screen montage ahead as versions commit: only those whose pages are
about to ask for it (the site of the newest photo, one with live readers of the event, one that
served a montage of it lately, or any once it is published); elsewhere a request builds it."""

from __future__ import annotations

import asyncio

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


async def test_a_version_whose_newest_photo_was_uploaded_here_is_built_ahead():
    m = montages()
    assert await built_after(m, state("e1", 2, HERE)) == [("e1", 2, "screen")]


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
