"""The sending end of blob shipping against one real site in-process: a blob reaches the peer,
a resumption sends only what the peer lacks, and a peer that takes nothing is given up on after
the stall timeout, whatever the blob's size."""

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
from web.peers.blob_shipping import BlobShipper, PeerMissedBlobs
from web.peers.auth import signed_headers
from web.keys import SERVICE
from web.settings import ProtocolSettings, Settings

BLOB = os.urandom(700_000)
SHA = hashlib.sha256(BLOB).hexdigest()


def shipper(tmp_path, session, peer_url: str, stall_s: float = 2.0) -> BlobShipper:
    settings = Settings(site_count=2, secret=SECRET, peer_urls=((0, peer_url),),
                        protocol=ProtocolSettings(blob_stall_s=stall_s))
    files = PhotoFiles(tmp_path / "sender")
    files.write("photo", SHA, BLOB)
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
