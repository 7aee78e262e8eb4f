"""One real site in-process (real SQLite, real actors, real montage files): the screen montage
each commit builds ahead is built once per event at a time; versions committed while it is
built are skipped, the latest is built next, and a skipped version is still served on request;
a version committed while another upload of the event is arriving waits for it; an upload from
the event's page builds ahead, one through the JSON API alone does not."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp

from eventstore.collage import SCREEN
from eventstore.imaging import normalize_upload
from tests.images import jpeg_bytes
from web import uploading
from web.csrf import csrf_token


def slow_builds(service, release: threading.Event) -> list[int]:
    """Each montage built ahead waits for `release` first; returns the versions built ahead."""
    built, real_build = [], service.montages.build

    def build(state, version, rendition):
        built.append(version)
        assert release.wait(10), "never released"
        return real_build(state, version, rendition)

    service.montages.build = build
    return built


async def test_versions_committed_while_a_montage_is_built_ahead_are_skipped_and_the_latest_is_built_next(site):
    event_id = await site.create_event("Picnic")
    site.montages.expect(event_id)  # as its page here does when it uploads
    release = threading.Event()
    built = slow_builds(site, release)

    for n in range(5):
        photo = normalize_upload(jpeg_bytes(64, 48, color=(40 * n, 90, 200)), max_pixels=10_000_000)
        await site.uploads.add_photos(event_id, "ann", [photo])
    release.set()

    state = await site.event_state(event_id)
    shas, thumbs = [p.sha256 for p in state.photos], [p.thumb_sha256 for p in state.photos]
    deadline = time.monotonic() + 10
    while not site.montages.cache.has(event_id, shas, SCREEN, thumbs):
        assert time.monotonic() < deadline, f"version 5 never built ahead (built: {built})"
        await asyncio.sleep(0.02)
    assert built == [1, 5]
    assert not site.montages.cache.has(event_id, shas[:3], SCREEN, thumbs[:3])
    assert (await site.montages.bytes(state, 3, SCREEN)).startswith(b"\xff\xd8")  # built on request


async def test_a_version_committed_while_another_upload_of_the_event_arrives_is_not_built_ahead(site, monkeypatch):
    event_id = await site.create_event("Picnic")
    site.montages.expect(event_id)
    release, real_normalize = threading.Event(), uploading.normalize_upload

    def slow_normalize(data, *, max_pixels):  # the second upload is still being checked here
        assert release.wait(10), "never released"
        return real_normalize(data, max_pixels=max_pixels)

    monkeypatch.setattr(uploading, "normalize_upload", slow_normalize)
    built: list[int] = []  # versions built ahead
    site.montages.build = built_and_recorded(site, built)
    arriving = asyncio.create_task(site.uploads.upload(event_id, "bob", [jpeg_bytes(64, 48, color=(9, 9, 9))]))
    await until(lambda: site.uploads.arriving(event_id), "bob's upload arriving")

    first = real_normalize(jpeg_bytes(64, 48, color=(200, 90, 20)), max_pixels=10_000_000)
    await site.uploads.add_photos(event_id, "ann", [first])
    await until(lambda: event_id in site.montages._settling, "version 1 waiting to settle")
    assert built == []
    release.set()
    await arriving
    assert not site.uploads.arriving(event_id)

    state = await site.event_state(event_id)
    shas, thumbs = [p.sha256 for p in state.photos], [p.thumb_sha256 for p in state.photos]
    await until(lambda: site.montages.cache.has(event_id, shas, SCREEN, thumbs), "version 2 built ahead")
    assert built == [2]


def built_and_recorded(service, built: list[int]):
    real_build = service.montages.build

    def build(state, version, rendition):
        built.append(version)
        return real_build(state, version, rendition)

    return build


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


async def test_an_upload_from_the_event_page_builds_ahead_and_one_through_the_api_alone_does_not(client, site):
    event_id = (await (await client.post("/api/events", json={"title": "Picnic"})).json())["event_id"]

    async def upload(path: str, seed: int) -> None:
        form = aiohttp.FormData()
        form.add_field("photo", jpeg_bytes(64, 48, color=(seed, 90, 200)), filename="p.jpg",
                       content_type="image/jpeg")
        resp = await client.post(path, data=form, headers={"Accept": "application/json"})
        assert resp.status == 201, await resp.text()

    async def newest() -> tuple[list[str], list[str]]:
        state = await site.event_state(event_id)
        return [p.sha256 for p in state.photos], [p.thumb_sha256 for p in state.photos]

    await upload(f"/api/events/{event_id}/photos", 1)  # its commit is reported before the 201
    shas, thumbs = await newest()
    assert event_id not in site.montages._pending
    assert not site.montages.cache.has(event_id, shas, SCREEN, thumbs)

    user_id = (await (await client.get("/api/me")).json())["user_id"]
    await upload(f"/events/{event_id}/photos?csrf_token={csrf_token('cookie-secret', user_id)}", 2)
    shas, thumbs = await newest()
    await until(lambda: site.montages.cache.has(event_id, shas, SCREEN, thumbs), "version 2 built ahead")
