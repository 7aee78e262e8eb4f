"""Two real sites in one process (aiohttp apps on 127.0.0.1, real SQLite, real actors), with
uploads to one event arriving at once: those waiting at a site while a transaction of the event
runs there are committed together by the next one, and each upload still gets its own answer
(its versions, or its own refusal)."""

from __future__ import annotations

import asyncio
import time

import pytest

from domain.errors import ContributorLimit
from domain.messages import AddPhotos
from eventstore.imaging import normalize_upload
from tests.e2e.cluster import free_base_port
from tests.images import jpeg_bytes
from web.keys import SERVICE
from web.settings import load_settings
from web.site import create_app


@pytest.fixture
async def two_sites(aiohttp_server, tmp_path):
    base = free_base_port(2)
    settings = load_settings(None, site_count=2, base_port=base, data_dir=tmp_path,
                             secret="integration-secret", cookie_secret="cookie-secret",
                             max_contributors=3)
    servers = [await aiohttp_server(create_app(settings, k), port=base + k) for k in (0, 1)]
    return [server.app[SERVICE] for server in servers]


def photo(seed: int):
    return normalize_upload(jpeg_bytes(64 + seed, 48, color=(10 * seed, 90, 200)), max_pixels=10_000_000)


def hold_first_transaction_until(site, waiting: int) -> list[int]:
    """The site's first upload transaction starts only once `waiting` more uploads queue behind
    it; returns the number of photos each upload transaction carried."""
    carried, real_run = [], site.run_transaction

    async def run_transaction(event_id, payload, first=None):
        if hasattr(payload, "photos"):
            carried.append(len(payload.photos))
            deadline = time.monotonic() + 10
            while len(carried) == 1 and len(site.uploads._queues.get(event_id, ())) < waiting + 1:
                assert time.monotonic() < deadline, "the other uploads never queued"
                await asyncio.sleep(0.01)
        return await real_run(event_id, payload, first)

    site.run_transaction = run_transaction
    return carried


def began(site, event_id: str) -> int:
    """Upload transactions the site began for the event."""
    return sum(1 for e in site.store.log(event_id)
               if e.type == "Began" and isinstance(e.record.payload, AddPhotos))


async def test_uploads_waiting_at_a_site_are_committed_by_one_transaction_each_with_its_own_versions(two_sites):
    upload_site, peer = two_sites
    event_id = await upload_site.create_event("Picnic")
    carried = hold_first_transaction_until(upload_site, waiting=3)
    uploads = [(user, photo(n)) for n, user in enumerate(["ann", "bob", "cat", "ann"])]

    # The first upload's transaction begins alone (were all four shipped before it began, it
    # would carry them all); the other three queue behind it while it is held.
    user, first_photo = uploads[0]
    first = asyncio.create_task(upload_site.uploads.add_photos(event_id, user, [first_photo]))
    deadline = time.monotonic() + 10
    while not carried:
        assert time.monotonic() < deadline, "the first upload's transaction never began"
        await asyncio.sleep(0.01)
    rest = await asyncio.gather(*(upload_site.uploads.add_photos(event_id, user, [p]) for user, p in uploads[1:]))
    answers = [await first, *rest]

    # The first transaction carries the one upload; the rest waited for it and go together.
    assert carried == [1, 3], carried
    assert began(upload_site, event_id) == 2
    for site in (upload_site, peer):
        state = await site.event_state(event_id)
        assert state.version == 4
        for metas, base in answers:  # the versions each upload was told are the ones committed
            assert state.photos[base].photo_id == metas[0].photo_id


async def test_an_upload_over_the_contributor_limit_is_refused_alone_and_the_others_commit(two_sites):
    upload_site, peer = two_sites
    event_id = await upload_site.create_event("Picnic")
    await upload_site.uploads.add_photos(event_id, "ann", [photo(1)])
    hold_first_transaction_until(upload_site, waiting=3)

    users = ["bob", "cat", "dan", "ann"]
    answers = await asyncio.gather(*(upload_site.uploads.add_photos(event_id, user, [photo(n)])
                                     for n, user in enumerate(users, 2)),
                                   return_exceptions=True)

    # The limit is 3: whichever of bob, cat and dan came last is refused, on its own.
    refused = [user for user, a in zip(users, answers) if isinstance(a, Exception)]
    assert len(refused) == 1 and refused[0] != "ann"
    assert isinstance(answers[users.index(refused[0])], ContributorLimit)
    for site in (upload_site, peer):
        state = await site.event_state(event_id)
        assert sorted(state.submitters) == sorted({"ann", "bob", "cat", "dan"} - set(refused))
        assert state.version == 4


async def test_uploads_arriving_at_once_at_two_sites_all_commit_in_the_same_order_everywhere(two_sites):
    event_id = await two_sites[0].create_event("Picnic")
    users = ["ann", "bob", "cat"]

    answers = await asyncio.gather(*(two_sites[n % 2].uploads.add_photos(event_id, users[n % 3], [photo(n)])
                                     for n in range(12)))

    states = [await site.event_state(event_id) for site in two_sites]
    assert states[0].version == states[1].version == 12
    assert [p.sha256 for p in states[0].photos] == [p.sha256 for p in states[1].photos]
    assert sorted(base for _, base in answers) == list(range(12))
    assert sum(began(site, event_id) for site in two_sites) >= 2
    # Each upload transaction went to the home site (site 0, where the event was created)
    # first: the other site prepared only what the home site had prepared before it.
    home, other = (prepared(site, event_id) for site in two_sites)
    assert other and set(other) <= set(home)
    assert all(home[txn] < other[txn] for txn in other)


def prepared(site, event_id: str) -> dict:
    """Upload transactions the site voted yes on for the event: txn id -> when."""
    return {e.record.txn_id: e.at for e in site.store.log(event_id)
            if e.type == "Prepared" and isinstance(e.record.payload, AddPhotos)}


async def test_an_upload_at_another_site_is_prepared_at_the_home_site_first(two_sites):
    home, upload_site = two_sites
    event_id = await home.create_event("Picnic")

    await upload_site.uploads.add_photos(event_id, "ann", [photo(1)])

    at_home, here = prepared(home, event_id), prepared(upload_site, event_id)
    assert list(at_home) == list(here)  # the one transaction, prepared at both
    (txn,) = here
    assert at_home[txn] < here[txn]
