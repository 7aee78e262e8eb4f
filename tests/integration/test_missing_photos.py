"""Two real sites in one process (aiohttp apps on 127.0.0.1, real SQLite, real actors), where a
peer loses a photo file after it was shipped and before the prepare: it votes no
(`missing_photos`, stored), the upload site ships again and the upload commits everywhere; a
peer that keeps losing them makes the upload fail with a clear 503 and nothing changes. An
upload's prepare reaches the peer's participant on the hot path; the actor checks the files."""

from __future__ import annotations

import threading

import pytest

from domain.errors import SiteUnreachable
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
                             secret="integration-secret", cookie_secret="cookie-secret")
    servers = [await aiohttp_server(create_app(settings, k), port=base + k) for k in (0, 1)]
    return [server.app[SERVICE] for server in servers]


def lose_after_shipping(upload_site, peer, times: int) -> list[int]:
    """The peer loses the photo file right after each of the first `times` shipments."""
    shipped, real_ship = [], upload_site.uploads.ship

    async def ship(photos) -> None:
        await real_ship(photos)
        shipped.append(len(photos))
        if len(shipped) <= times:
            for photo in photos:
                peer.files.path("photo", photo.sha256).unlink()

    upload_site.uploads.ship = ship
    return shipped


def refusals(service, event_id: str) -> list[str]:
    return [e.record.reason for e in service.store.log(event_id)
            if e.record is not None and e.type == "Refused"]


async def test_a_peer_that_lost_a_shipped_photo_votes_no_and_the_upload_commits_after_shipping_again(two_sites):
    upload_site, peer = two_sites
    event_id = await upload_site.create_event("Picnic")
    photo = normalize_upload(jpeg_bytes(320, 240), max_pixels=10_000_000)
    shipped = lose_after_shipping(upload_site, peer, times=1)

    metas, base = await upload_site.uploads.add_photos(event_id, "ann", [photo])

    assert (len(shipped), base) == (2, 0)
    assert refusals(peer, event_id) == ["missing_photos"]
    for site in (upload_site, peer):
        state = await site.event_state(event_id)
        assert [p.sha256 for p in state.photos] == [photo.sha256]
        assert site.files.has("photo", photo.sha256) and site.files.has("thumb", photo.thumb_sha256)


async def test_a_peer_that_keeps_losing_the_photos_makes_the_upload_fail_with_503_and_change_nothing(two_sites):
    upload_site, peer = two_sites
    event_id = await upload_site.create_event("Picnic")
    photo = normalize_upload(jpeg_bytes(320, 240), max_pixels=10_000_000)
    lose_after_shipping(upload_site, peer, times=100)

    with pytest.raises(SiteUnreachable, match="still lacks the photos"):
        await upload_site.uploads.add_photos(event_id, "ann", [photo])

    assert set(refusals(peer, event_id)) == {"missing_photos"}
    for site in (upload_site, peer):
        assert (await site.event_state(event_id)).photos == ()


async def test_an_uploads_prepare_is_checked_by_the_participant_on_the_hot_path(two_sites):
    upload_site, peer = two_sites
    event_id = await upload_site.create_event("Picnic")
    photo = normalize_upload(jpeg_bytes(320, 240), max_pixels=10_000_000)
    dispatched, real_dispatch = [], peer.dispatch
    claimed, real_claim = [], peer.files.claim

    async def dispatch(message):
        dispatched.append(type(message).__name__)
        return await real_dispatch(message)

    def claim(kind, sha):
        claimed.append((kind, sha, threading.current_thread().name))
        return real_claim(kind, sha)

    peer.dispatch, peer.files.claim = dispatch, claim
    await upload_site.uploads.add_photos(event_id, "ann", [photo])

    assert "Prepare" not in dispatched  # no task, no executor hop: straight to the actor...
    by_actor = [(kind, sha) for kind, sha, thread in claimed if thread.startswith("actors")]
    assert ("photo", photo.sha256) in by_actor  # ...which looked at this site's files itself
    assert [p.sha256 for p in (await peer.event_state(event_id)).photos] == [photo.sha256]
