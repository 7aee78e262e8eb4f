"""The blob endpoint of one real site (aiohttp app, real files in tmp_path): blobs verified by
their sha256, resumed from what is held, refused when unsigned or wrong, written durably."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import struct
import time

import pytest
from aiohttp.test_utils import TestServer

from tests.integration.conftest import SECRET
from web.keys import SERVICE
from web.peers import blob_api
from web.peers.auth import signed_headers
from web.peers.blob_api import BLOBS, BLOBS_PATH, TOGETHER_BYTES, blob_path
from web.settings import load_settings
from web.site import create_app

BLOB = os.urandom(300_000)
SHA = hashlib.sha256(BLOB).hexdigest()


def signed(method: str, path: str, secret: str = SECRET) -> dict:
    return signed_headers(secret, 9, method, path, b"")


async def held(client, sha: str = SHA, kind: str = "photo") -> dict:
    path = blob_path(kind, sha)
    resp = await client.get(path, headers=signed("GET", path))
    assert resp.status == 200
    return await resp.json()


async def put(client, data: bytes, offset: int = 0, size: int = len(BLOB), sha: str = SHA,
              secret: str = SECRET):
    path = f"{blob_path('photo', sha)}?offset={offset}&size={size}"
    return await client.put(path, data=data, headers=signed("PUT", path, secret))


def files(client):
    return client.server.app[SERVICE].files


async def test_a_blob_sent_whole_is_verified_and_kept_under_its_name(client):
    assert await held(client) == {"complete": False, "held": 0}
    resp = await put(client, BLOB)
    assert resp.status == 201
    assert files(client).read("photo", SHA) == BLOB
    assert await held(client) == {"complete": True, "held": len(BLOB)}


async def test_a_blob_cut_short_keeps_its_bytes_and_is_resumed_from_what_is_held(client):
    resp = await put(client, BLOB[:100_000])  # the stream ends before the size announced
    assert (resp.status, await resp.json()) == (202, {"complete": False, "held": 100_000})
    assert await held(client) == {"complete": False, "held": 100_000}
    assert not files(client).has("photo", SHA)
    resp = await put(client, BLOB[100_000:], offset=100_000)
    assert resp.status == 201
    assert files(client).read("photo", SHA) == BLOB


async def test_a_resumption_may_start_before_what_is_held_but_never_after_it(client):
    await put(client, BLOB[:100_000])
    resp = await put(client, BLOB[150_000:], offset=150_000)
    assert (resp.status, (await resp.json())["held"]) == (409, 100_000)
    resp = await put(client, BLOB[50_000:], offset=50_000)  # overlaps what is held: rewritten
    assert resp.status == 201
    assert files(client).read("photo", SHA) == BLOB


async def test_bytes_that_do_not_hash_to_the_name_are_refused_and_dropped(client):
    wrong = bytes(len(BLOB))
    resp = await put(client, wrong)
    assert (resp.status, (await resp.json())["error"]) == (422, "digest_mismatch")
    assert not files(client).has("photo", SHA)
    assert await held(client) == {"complete": False, "held": 0}  # the sender starts again


async def test_more_bytes_than_announced_are_refused(client):
    resp = await put(client, BLOB + b"extra")
    assert resp.status == 400
    assert not files(client).has("photo", SHA)


async def test_an_unsigned_or_wrongly_signed_request_gets_401_and_nothing_is_kept(client):
    path = f"{blob_path('photo', SHA)}?offset=0&size={len(BLOB)}"
    assert (await client.put(path, data=BLOB)).status == 401
    assert (await put(client, BLOB, secret="not-the-secret")).status == 401
    other = f"{blob_path('photo', SHA)}?offset=0&size=1"  # signed for another query
    resp = await client.put(path, data=BLOB, headers=signed("PUT", other))
    assert resp.status == 401
    assert (await client.get(blob_path("photo", SHA))).status == 401
    assert await held(client) == {"complete": False, "held": 0}


@pytest.mark.parametrize("path", [
    "/internal/v1/blobs/movie/" + SHA,
    "/internal/v1/blobs/photo/" + SHA.upper(),
    "/internal/v1/blobs/photo/not-a-sha",
])
async def test_a_blob_of_another_kind_or_name_is_refused(client, path):
    resp = await client.get(path, headers=signed("GET", path))
    assert resp.status == 400


async def test_a_size_over_the_cap_is_refused_before_a_byte_is_read(client):
    cap = client.server.app[BLOBS].max_bytes
    resp = await put(client, b"x", size=cap + 1)
    assert resp.status == 413


async def test_a_complete_blob_is_fsynced_before_its_rename_and_its_folder_after(client, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert (await put(client, BLOB)).status == 201
    final = str(files(client).path("photo", SHA))
    part = [p for p in synced if p.endswith(".part")]
    assert part and synced.index(part[-1]) < synced.index(str(files(client).path("photo", SHA).parent))
    assert os.path.exists(final)
    assert not list(files(client).path("photo", SHA).parent.glob("*.part"))  # nothing half-way


async def test_a_connection_cut_mid_stream_keeps_the_bytes_that_arrived(client):
    import asyncio

    path = f"{blob_path('photo', SHA)}?offset=0&size={len(BLOB)}"
    head = "".join(f"{k}: {v}\r\n" for k, v in signed("PUT", path).items())
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(BLOB)}\r\n\r\n".encode()
                 + BLOB[:120_000])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.transport.abort()  # cut, as a reset link would
    for _ in range(100):
        if (await held(client))["held"] == 120_000:
            break
        await asyncio.sleep(0.02)
    assert await held(client) == {"complete": False, "held": 120_000}
    assert (await put(client, BLOB[120_000:], offset=120_000)).status == 201
    assert files(client).read("photo", SHA) == BLOB


async def test_two_streams_of_one_blob_take_turns_and_both_end_with_it_whole(client):
    import asyncio

    first, second = await asyncio.gather(put(client, BLOB), put(client, BLOB))
    assert sorted([first.status, second.status]) == [201, 201]
    assert files(client).read("photo", SHA) == BLOB
    assert client.server.app[BLOBS].locks == {}  # no lock kept for a blob nobody sends


# --- small blobs together (PUT /internal/v1/blobs?items=...) ---------------------------------------

PHOTO, THUMB = os.urandom(3000), os.urandom(1500)
PHOTO_SHA, THUMB_SHA = hashlib.sha256(PHOTO).hexdigest(), hashlib.sha256(THUMB).hexdigest()


async def put_together(client, items: list[tuple[str, str, int]], body: bytes, secret: str = SECRET):
    path = BLOBS_PATH + "?items=" + ",".join(f"{k}:{s}:{n}" for k, s, n in items)
    return await client.put(path, data=body, headers=signed("PUT", path, secret))


async def test_small_blobs_sent_together_are_each_verified_and_kept_durably(client, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    resp = await put_together(client, [("photo", PHOTO_SHA, len(PHOTO)), ("thumb", THUMB_SHA, len(THUMB))],
                              PHOTO + THUMB)
    assert (resp.status, await resp.json()) == (201, {"complete": [True, True]})
    assert files(client).read("photo", PHOTO_SHA) == PHOTO
    assert files(client).read("thumb", THUMB_SHA) == THUMB
    assert len(synced) >= 4  # each file, and each folder after its rename


async def test_a_blob_of_a_group_whose_bytes_are_not_it_is_not_kept_and_the_rest_are(client):
    wrong = hashlib.sha256(b"something else").hexdigest()
    resp = await put_together(client, [("photo", wrong, len(PHOTO)), ("thumb", THUMB_SHA, len(THUMB))],
                              PHOTO + THUMB)
    assert (resp.status, await resp.json()) == (201, {"complete": [False, True]})
    assert not files(client).has("photo", wrong)
    assert files(client).read("thumb", THUMB_SHA) == THUMB


async def test_a_blob_of_a_group_already_held_is_answered_complete(client):
    await put_together(client, [("thumb", THUMB_SHA, len(THUMB))], THUMB)
    resp = await put_together(client, [("photo", PHOTO_SHA, len(PHOTO)), ("thumb", THUMB_SHA, len(THUMB))],
                              PHOTO + THUMB)
    assert (await resp.json()) == {"complete": [True, True]}


@pytest.mark.parametrize("items, body, status", [
    ([("photo", PHOTO_SHA, len(PHOTO))], PHOTO[:-1], 400),  # fewer bytes than named
    ([("photo", PHOTO_SHA, len(PHOTO))], PHOTO + b"x", 413),  # more
    ([("photo", PHOTO_SHA, TOGETHER_BYTES + 1)], b"x" * (TOGETHER_BYTES + 1), 413),  # larger than a blob sent together may be
    ([("photo", PHOTO_SHA, 0)], b"", 400),  # empty
    ([("video", PHOTO_SHA, len(PHOTO))], PHOTO, 400),  # no such kind
    ([("photo", "../../etc", len(PHOTO))], PHOTO, 400),  # not a sha256
    ([("photo", PHOTO_SHA, len(PHOTO))] * 17, PHOTO * 17, 400),  # too many
])
async def test_a_malformed_group_is_refused_and_nothing_is_kept(client, items, body, status):
    resp = await put_together(client, items, body)
    assert resp.status == status
    assert (await resp.json())["error"] == "invalid_request"
    assert not files(client).has("photo", PHOTO_SHA)


async def test_a_group_whose_items_are_not_kind_sha_size_is_refused(client):
    for raw in ("photo", "photo:abc", f"photo:{PHOTO_SHA}:x", f"photo:{PHOTO_SHA}:-1", ""):
        path = "/internal/v1/blobs?items=" + raw
        resp = await client.put(path, data=b"x", headers=signed("PUT", path))
        assert resp.status == 400, raw
        assert (await resp.json())["error"] == "invalid_request"


async def test_an_unsigned_group_gets_401_and_nothing_is_kept(client):
    resp = await put_together(client, [("photo", PHOTO_SHA, len(PHOTO))], PHOTO, secret="another-secret-entirely")
    assert resp.status == 401
    assert not files(client).has("photo", PHOTO_SHA)


class SiteServer(TestServer):
    """The app served as web.run_app serves a site: a handler goes on when its client goes
    (aiohttp's test server cancels it instead), and sees the lost connection in its reads."""

    async def _make_runner(self, **kwargs):
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


@pytest.fixture
async def site_client(aiohttp_client, tmp_path):
    settings = load_settings(None, site_count=1, data_dir=tmp_path, secret=SECRET,
                             cookie_secret="cookie-secret")
    return await aiohttp_client(SiteServer(create_app(settings, 0)))


def noting_start(monkeypatch, name: str) -> list:
    """A list that gets an entry once blob_api's `name` (a step at the handler's start) ran."""
    started, real = [], getattr(blob_api, name)

    def noted(*args, **kwargs):
        started.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(blob_api, name, noted)
    return started


async def cut_off(client, path: str, body: bytes, announced: int, started: list) -> None:
    """A signed PUT whose connection goes after `body`, short of the `announced` length, once
    its handler has started."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = [f"PUT {path} HTTP/1.1", f"Host: {client.server.host}", f"Content-Length: {announced}",
            "Content-Type: application/octet-stream",
            *(f"{name}: {value}" for name, value in signed("PUT", path).items())]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()

    async def handling() -> bool:
        return bool(started)
    await until(handling, "the request never reached its handler")
    sock = writer.get_extra_info("socket")  # closed with no linger: a reset (RST), not an end
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # as a peer that crashed or lost its link


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_blob_whose_sender_goes_mid_stream_keeps_its_bytes_and_is_no_storage_failure(
        site_client, caplog, monkeypatch):
    client = site_client
    path = f"{blob_path('photo', SHA)}?offset=0&size={len(BLOB)}"

    await cut_off(client, path, BLOB[:100_000], len(BLOB), noting_start(monkeypatch, "_receive"))

    async def kept() -> bool:
        return (await held(client))["held"] == 100_000
    await until(kept, "the bytes that arrived before the cut were not kept")
    assert client.server.app[SERVICE].store.health.problem is None  # a peer went, not the disk
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    resp = await put(client, BLOB[100_000:], offset=100_000)  # the sender resumes
    assert resp.status == 201


async def test_small_blobs_whose_sender_goes_mid_body_are_not_kept_and_no_error(site_client, caplog, monkeypatch):
    client = site_client
    items = [("photo", PHOTO_SHA, len(PHOTO)), ("thumb", THUMB_SHA, len(THUMB))]
    path = BLOBS_PATH + "?items=" + ",".join(f"{k}:{s}:{n}" for k, s, n in items)
    stored = noting_start(monkeypatch, "store_together")

    await cut_off(client, path, PHOTO[:1000], len(PHOTO) + len(THUMB), noting_start(monkeypatch, "parse_items"))

    async def logged_or_settled() -> bool:  # the handler ended, one way or the other
        return bool([r for r in caplog.records if r.levelno >= logging.ERROR]) or \
            not [t for t in asyncio.all_tasks() if "RequestHandler" in repr(t.get_coro())]
    await until(logged_or_settled, "the request never ended")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert stored == []
    assert not files(client).has("photo", PHOTO_SHA) and not files(client).has("thumb", THUMB_SHA)
    assert client.server.app[SERVICE].store.health.problem is None
