"""The sending end of blob shipping against one real site in-process: a blob reaches the peer,
a resumption sends only what the peer lacks, a small blob goes in one request (an upload's small
blobs in one request per peer, and one by one if the peer would not take them so; a peer that
holds it already answers so), and a peer that takes nothing is given up on after the stall
timeout, whatever the blob's size."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time

import pytest

from eventstore.photo_files import PhotoFiles
from tests.integration.conftest import SECRET
from web.peers.blob_api import blob_path
from web.peers.blob_shipping import SEND_AT_ONCE, BlobShipper, PeerMissedBlobs
from web.peers.auth import signed_headers
from web.keys import SERVICE
from web.settings import ProtocolSettings, Settings

BLOB = os.urandom(700_000)
SHA = hashlib.sha256(BLOB).hexdigest()
SMALL = os.urandom(SEND_AT_ONCE)  # a thumbnail's size: sent without asking first
SMALL_SHA = hashlib.sha256(SMALL).hexdigest()
TINY = os.urandom(2000)  # a tiny upload's photo: it goes with its thumbnail (SMALL)
TINY_SHA = hashlib.sha256(TINY).hexdigest()


def shipper(tmp_path, session, peer_url: str, stall_s: float = 2.0) -> BlobShipper:
    settings = Settings(site_count=2, secret=SECRET, peer_urls=((0, peer_url),),
                        protocol=ProtocolSettings(blob_stall_s=stall_s))
    files = PhotoFiles(tmp_path / "sender")
    files.write("photo", SHA, BLOB)
    files.write("thumb", SMALL_SHA, SMALL)
    files.write("photo", TINY_SHA, TINY)
    return BlobShipper(settings, 1, files, lambda: session)


def peer_url(client) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_a_blob_reaches_the_peer_whole_and_verified(client, tmp_path):
    await shipper(tmp_path, client.session, peer_url(client)).ship([("photo", SHA)], (0, 1))
    assert client.server.app[SERVICE].files.read("photo", SHA) == BLOB


async def test_a_resumed_blob_sends_only_what_the_peer_lacks(client, tmp_path):
    path = f"{blob_path('photo', SHA)}?offset=0&size={len(BLOB)}"
    headers = signed_headers(SECRET, 1, "PUT", path, b"")
    assert (await client.put(path, data=BLOB[:500_000], headers=headers)).status == 202
    sender = shipper(tmp_path, client.session, peer_url(client))
    offsets = []
    real_put = sender._put

    async def put(site, kind, sha, offset, size):
        offsets.append(offset)
        return await real_put(site, kind, sha, offset, size)

    sender._put = put
    await sender.ship([("photo", SHA)], (0, 1))
    assert offsets == [500_000]
    assert client.server.app[SERVICE].files.read("photo", SHA) == BLOB


async def test_a_blob_the_peer_already_holds_is_not_sent_again(client, tmp_path):
    sender = shipper(tmp_path, client.session, peer_url(client))
    await sender.ship([("photo", SHA)], (0, 1))
    sender._put = None  # any attempt to send would fail
    await sender.ship([("photo", SHA)], (0, 1))


def counted(sender: BlobShipper) -> list[str]:
    """The requests the sender makes, in order: 'GET' (what do you hold) or 'PUT offset'."""
    seen, real_held, real_put = [], sender._held, sender._put

    async def held(site, kind, sha):
        seen.append("GET")
        return await real_held(site, kind, sha)

    async def put(site, kind, sha, offset, size):
        seen.append(f"PUT {offset}")
        return await real_put(site, kind, sha, offset, size)

    sender._held, sender._put = held, put
    return seen


async def test_a_small_blob_goes_in_one_request_and_a_large_one_asks_first(client, tmp_path):
    sender = shipper(tmp_path, client.session, peer_url(client))
    seen = counted(sender)
    await sender.ship([("thumb", SMALL_SHA)], (0, 1))
    assert seen == ["PUT 0"]
    await sender.ship([("photo", SHA)], (0, 1))
    assert seen == ["PUT 0", "GET", "PUT 0"]
    files = client.server.app[SERVICE].files
    assert files.read("thumb", SMALL_SHA) == SMALL and files.read("photo", SHA) == BLOB


async def test_the_small_blobs_of_an_upload_go_to_a_peer_in_one_request(client, tmp_path):
    sender = shipper(tmp_path, client.session, peer_url(client))
    seen = counted(sender)
    together, real_together = [], sender._put_together

    async def put_together(site, items, held):
        together.append([kind for kind, _, _ in items])
        return await real_together(site, items, held)

    sender._put_together = put_together
    await sender.ship([("photo", TINY_SHA), ("thumb", SMALL_SHA), ("photo", SHA)], (0, 1))
    assert together == [["photo", "thumb"]]
    assert seen == ["GET", "PUT 0"]  # only the large one, alone
    files = client.server.app[SERVICE].files
    assert files.read("photo", TINY_SHA) == TINY and files.read("thumb", SMALL_SHA) == SMALL


async def test_an_uploads_files_go_from_memory_not_read_back_off_the_disk(client, tmp_path):
    sender = shipper(tmp_path, client.session, peer_url(client))
    tiny, small = os.urandom(1500), os.urandom(3000)  # held in memory only: no file of them here
    blobs = [("photo", hashlib.sha256(tiny).hexdigest()), ("thumb", hashlib.sha256(small).hexdigest())]
    assert not any(sender.files.has(*blob) for blob in blobs)
    seen = counted(sender)
    await sender.ship(blobs, (0, 1), contents=dict(zip(blobs, (tiny, small))))
    assert seen == []  # one request for both, with nothing asked first
    files = client.server.app[SERVICE].files
    assert files.read(*blobs[0]) == tiny and files.read(*blobs[1]) == small


async def test_small_blobs_a_peer_would_not_take_together_go_alone(client, tmp_path):
    sender = shipper(tmp_path, client.session, peer_url(client))
    real_together = sender._put_together

    async def refused_together(site, items, held):  # as a peer that lacks the route, say
        return await real_together(site, [(kind, sha, size + 1) for kind, sha, size in items], held)

    sender._put_together = refused_together
    seen = counted(sender)
    await sender.ship([("photo", TINY_SHA), ("thumb", SMALL_SHA)], (0, 1))
    assert seen == ["PUT 0", "PUT 0"]
    files = client.server.app[SERVICE].files
    assert files.read("photo", TINY_SHA) == TINY and files.read("thumb", SMALL_SHA) == SMALL


async def test_a_small_blob_goes_with_its_length_and_a_large_one_streamed(client, tmp_path):
    # A chunked body's last write can fail after the peer answered (its connection reset or
    # closed): aiohttp then leaves that failure in a task nobody reads. Bytes with a length
    # leave nothing to write once answered; only large blobs are streamed.
    sender = shipper(tmp_path, client.session, peer_url(client))
    bodies, real_put = [], client.session.put

    def put(url, *, data, **kwargs):
        bodies.append(type(data).__name__)
        return real_put(url, data=data, **kwargs)

    client.session.put = put
    try:
        await sender.ship([("thumb", SMALL_SHA)], (0, 1))
        await sender.ship([("thumb", SMALL_SHA)], (0, 1))  # held already: answered, body drained
        await sender.ship([("photo", SHA)], (0, 1))
    finally:
        client.session.put = real_put
    assert bodies == ["bytes", "bytes", "async_generator"]


async def test_a_small_blob_the_peer_holds_is_answered_complete_and_a_cut_one_resumes(client, tmp_path):
    sender = shipper(tmp_path, client.session, peer_url(client))
    await sender.ship([("thumb", SMALL_SHA)], (0, 1))
    seen = counted(sender)
    await sender.ship([("thumb", SMALL_SHA)], (0, 1))  # held already: one PUT, answered complete
    assert seen == ["PUT 0"]

    other = os.urandom(1000)
    other_sha = hashlib.sha256(other).hexdigest()
    sender.files.write("thumb", other_sha, other)
    path = f"{blob_path('thumb', other_sha)}?offset=0&size={len(other)}"
    headers = signed_headers(SECRET, 1, "PUT", path, b"")
    assert (await client.put(path, data=other[:400], headers=headers)).status == 202  # a cut
    seen.clear()
    await sender.ship([("thumb", other_sha)], (0, 1))
    assert seen == ["PUT 0"]  # sent whole again from 0: the part is rewritten, not appended to
    assert client.server.app[SERVICE].files.read("thumb", other_sha) == other


async def test_a_peer_that_takes_no_byte_is_given_up_after_the_stall_timeout(client, tmp_path):
    silent = socket.socket()  # accepts connections (the backlog), never reads or answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        sender = shipper(tmp_path, client.session, f"http://127.0.0.1:{silent.getsockname()[1]}",
                         stall_s=0.5)
        started = time.monotonic()
        with pytest.raises(PeerMissedBlobs) as refused:
            await asyncio.wait_for(sender.ship([("photo", SHA)], (0, 1)), 10)
        assert refused.value.sites == [0]
        assert 0.5 <= time.monotonic() - started < 3
    finally:
        silent.close()
