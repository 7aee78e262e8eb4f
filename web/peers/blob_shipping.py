"""Ship, then commit: the upload site sends each photo file to every peer before the 2PC.

A blob (a photo or its thumbnail, named by its sha256) goes to a peer as a stream read off the
disk: the peer is asked how many bytes it holds (`GET`), then sent the rest (`PUT` from that
offset; web.peers.blob_api is the receiving end). A cut costs only the bytes in flight: the next
attempt resumes after what the peer kept. A small blob (a thumbnail, a small photo) is sent whole
at once, without asking first: it is almost always new to the peer, and one request is half the
work of two (a peer that holds it already answers before reading it); the small blobs of one
upload go to a peer in one request (`PUT /internal/v1/blobs`), and any it did not store then
go alone, as above. Peers are served concurrently; a slow link delays its
own upload only, as no event is locked meanwhile.

There is no timeout on size: an attempt ends when no byte has gone out (or come back) for
`blob_stall_s`, and a peer is given up when a whole `blob_stall_s` passes without it holding a
byte more of the blob; then the upload fails (503) before anything was prepared.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import aiohttp

from web.peers.blob_api import BLOBS_PATH, TOGETHER_BYTES, TOGETHER_ITEMS, blob_path
from web.peers.auth import signed_headers

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
SEND_AT_ONCE = TOGETHER_BYTES  # a blob up to this size goes without asking what the peer holds

Blob = tuple[str, str]  # (kind, sha256)
SHIPPING_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError)


class PeerMissedBlobs(ConnectionError):
    def __init__(self, sites: list[int]):
        super().__init__(f"site(s) {', '.join(map(str, sites))} could not be sent the photos")
        self.sites = sites


def blobs_of(photos) -> list[Blob]:
    """The files of photos (PhotoMeta or NormalizedPhoto), each once, photos first."""
    blobs = {}
    for photo in photos:
        blobs[("photo", photo.sha256)] = None
        blobs[("thumb", photo.thumb_sha256)] = None
    return list(blobs)


class BlobShipper:
    def __init__(self, settings, site: int, files, session_of):
        self.settings = settings
        self.site = site
        self.files = files
        self.session_of = session_of  # () -> the site's aiohttp ClientSession (made at start)

    @property
    def stall_s(self) -> float:
        return self.settings.protocol.blob_stall_s

    async def ship(self, blobs: list[Blob], sites, contents: dict[Blob, bytes] | None = None) -> None:
        """Every blob to every site but this one; PeerMissedBlobs names the sites that could
        not be sent them. `contents`: the bytes of blobs the caller holds in memory (an upload's
        files just stored here), sent from there rather than read back off the disk for each
        peer; any other blob is read from its file."""
        peers = [k for k in sites if k != self.site]
        held = contents or {}
        results = await asyncio.gather(*(self._ship_all(k, blobs, held) for k in peers),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, SHIPPING_ERRORS):
                raise r
        failed = [k for k, r in zip(peers, results) if isinstance(r, BaseException)]
        if failed:
            raise PeerMissedBlobs(failed)

    async def _ship_all(self, site: int, blobs: list[Blob], held: dict[Blob, bytes]) -> None:
        sizes = {blob: len(held[blob]) if blob in held else self.files.path(*blob).stat().st_size
                 for blob in blobs}
        small = [blob for blob in blobs if sizes[blob] <= SEND_AT_ONCE][:TOGETHER_ITEMS]
        if len(small) > 1:
            try:
                stored = await self._put_together(site, [(kind, sha, sizes[kind, sha]) for kind, sha in small],
                                                  held)
            except SHIPPING_ERRORS as e:  # each goes alone now (and asks first if it must)
                log.debug("blobs together to site %d: %r", site, e)
                stored = set()
            blobs = [blob for blob in blobs if blob not in stored]
        for kind, sha in blobs:
            await self.ship_one(site, kind, sha, sizes[kind, sha])

    async def ship_one(self, site: int, kind: str, sha: str, size: int) -> None:
        """Until the peer holds the blob (of `size` bytes); raises once it took no byte more
        for blob_stall_s."""
        most, progressed, attempt = -1, time.monotonic(), 0
        ask = size > SEND_AT_ONCE  # after a first attempt, always: it resumes where the peer is
        while True:
            try:
                complete, held = await self._held(site, kind, sha) if ask else (False, 0)
            except SHIPPING_ERRORS:
                if time.monotonic() - progressed > self.stall_s:
                    raise
            else:
                if complete:
                    return
                if held > most:
                    most, progressed = held, time.monotonic()
                elif time.monotonic() - progressed > self.stall_s:
                    raise TimeoutError(f"site {site} took no byte of {kind} {sha} for {self.stall_s} s")
                try:
                    if await self._put(site, kind, sha, held, size):
                        return
                except SHIPPING_ERRORS as e:  # cut, stalled or refused: ask again what it holds
                    log.debug("%s %s to site %d: %r", kind, sha[:12], site, e)
            attempt, ask = attempt + 1, True
            await asyncio.sleep(random.uniform(0.05, min(1.0, 0.05 * 2 ** attempt)))

    def _headers(self, method: str, path: str) -> dict[str, str]:
        return signed_headers(self.settings.secret, self.site, method, path, b"")

    async def _held(self, site: int, kind: str, sha: str) -> tuple[bool, int]:
        path = blob_path(kind, sha)
        async with asyncio.timeout(self.stall_s):
            async with self.session_of().get(self.settings.peer_url(site) + path,
                                             headers=self._headers("GET", path)) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                      message=await resp.text())
                body = await resp.json()
        return bool(body["complete"]), int(body["held"])

    async def _put(self, site: int, kind: str, sha: str, offset: int, size: int) -> bool:
        """Send bytes offset.. of the blob; whether the peer now holds it whole."""
        async with asyncio.timeout(self.stall_s) as stall:
            if size - offset <= SEND_AT_ONCE:  # bytes with a length: nothing left to write
                body = await asyncio.get_running_loop().run_in_executor(   # once answered
                    None, lambda: self.files.read(kind, sha)[offset:])
            else:  # streamed (chunked); a peer that answers early drains or drops the rest
                body = self._read(kind, sha, offset, stall)
            resp, answer = await self._send(site, f"{blob_path(kind, sha)}?offset={offset}&size={size}", body)
        if resp.status in (201, 202):
            return bool(answer.get("complete"))
        if resp.status in (409, 422):  # ask again how much it holds (422: it dropped the part)
            return False
        raise _refused(resp, answer)

    async def _put_together(self, site: int, items: list[tuple[str, str, int]],
                            held: dict[Blob, bytes]) -> set[Blob]:
        """Send small blobs in one request (their bytes from `held`, else off the disk); the
        ones the peer now holds."""
        if all((k, s) in held for k, s, _ in items):
            body = b"".join(held[k, s] for k, s, _ in items)
        else:
            loop = asyncio.get_running_loop()
            body = b"".join(await loop.run_in_executor(None, lambda: [self.files.read(k, s) for k, s, _ in items]))
        path = BLOBS_PATH + "?items=" + ",".join(f"{kind}:{sha}:{size}" for kind, sha, size in items)
        async with asyncio.timeout(self.stall_s):
            resp, answer = await self._send(site, path, body)
        if resp.status != 201:
            raise _refused(resp, answer)
        return {(kind, sha) for (kind, sha, _), complete in zip(items, answer["complete"]) if complete}

    async def _send(self, site: int, path: str, body) -> tuple[aiohttp.ClientResponse, dict]:
        """PUT the body to the peer's path, signed; the response and its JSON answer (within
        the caller's timeout)."""
        headers = {**self._headers("PUT", path), "Content-Type": "application/octet-stream"}
        async with self.session_of().put(self.settings.peer_url(site) + path, data=body,
                                         headers=headers) as resp:
            return resp, await resp.json(content_type=None)

    async def _read(self, kind: str, sha: str, offset: int, stall):
        """The file from offset, in chunks read off the loop; each chunk taken by the
        connection is progress, which moves the stall timeout on."""
        loop = asyncio.get_running_loop()
        with open(self.files.path(kind, sha), "rb") as f:
            f.seek(offset)
            while chunk := await loop.run_in_executor(None, f.read, CHUNK):
                yield chunk
                stall.reschedule(loop.time() + self.stall_s)


def _refused(resp: aiohttp.ClientResponse, answer) -> aiohttp.ClientResponseError:
    """A peer's answer that is none of the expected ones, as the shipping error it is."""
    return aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=str(answer))
