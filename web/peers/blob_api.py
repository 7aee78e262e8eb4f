"""The receiving end of blob shipping (web.peers.blob_shipping): photo files from peers, streamed in,
resumable, verified, durable; no event is locked while their bytes travel.

    GET /internal/v1/blobs/{kind}/{sha256}
        -> 200 {"complete": bool, "held": bytes held}
    PUT /internal/v1/blobs/{kind}/{sha256}?offset=O&size=S   (body: bytes O.. of the file)
        -> 201 {"complete": true, "held": S}     verified, fsynced, under its final name
           202 {"complete": false, "held": n}    the stream ended early: n bytes kept
           409 {"error": "offset_past_held", "held": n}   resend from n
           422 {"error": "digest_mismatch"}      the bytes were not the blob: dropped
    PUT /internal/v1/blobs?items=KIND:SHA256:SIZE,...   (body: the blobs' bytes, one after another)
        -> 201 {"complete": [bool, ...]}          small blobs together, each stored whole (durable)
                                                  or not at all (false: its bytes were not it)

Requests are authenticated like every request under /internal/ (web.peers.auth, before a byte of
the body is read), the path with its query signed; the signed body digest is that of no body:
the bytes need no signature, as they are verified against their name (sha256) before they are
kept under it. A stream that makes no
progress for `blob_stall_s` ends the request; what arrived is kept for the resumption.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from eventstore.blob_parts import BlobParts, DigestMismatch
from eventstore.store_trouble import problem_of

log = logging.getLogger(__name__)
BLOB_PATH = "/internal/v1/blobs/{kind}/{sha}"
BLOBS_PATH = "/internal/v1/blobs"
# A blob sent together with others is at most this large: a 512 px thumbnail of a detailed
# photo (~30-100 KB), and a small photo.
TOGETHER_BYTES = 128 * 1024
TOGETHER_ITEMS = 16  # and at most this many go in one request
BLOBS = web.AppKey("blobs", object)  # BlobReceiver, made when the site starts
WRITE_BYTES = 1024 * 1024  # received bytes are written to the part in pieces of about this
# A body that stopped arriving because its sender's connection went (reset, or a length or
# chunked stream cut short): the peer's trouble, never this site's storage.
CUT = (ConnectionError, HttpProcessingError)


def blob_path(kind: str, sha256: str) -> str:
    return BLOB_PATH.format(kind=kind, sha=sha256)


class BlobReceiver:
    """What the handlers need: the part files, limits, and a lock per blob (one stream into a
    part at a time; a second waits for the first, which ends within the stall timeout)."""

    def __init__(self, files, settings, health):
        self.parts = BlobParts(files)
        self.settings = settings
        self.health = health  # the store's health: a failing disk shows in /api/status
        self.max_bytes = 2 * settings.max_photo_bytes + 1024 * 1024
        self.locks: dict[tuple[str, str], list] = {}  # blob -> [its lock, streams using it]

    @contextlib.asynccontextmanager
    async def holding(self, kind: str, sha256: str, timeout: float):
        """The blob's lock (TimeoutError if not had within `timeout`); forgotten when unused."""
        entry = self.locks.setdefault((kind, sha256), [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with asyncio.timeout(timeout):
                await entry[0].acquire()
            try:
                yield
            finally:
                entry[0].release()
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self.locks[(kind, sha256)]


def _refused(status: int, code: str, message: str, **extra) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


def _blob(request: web.Request) -> tuple[str, str]:
    kind, sha = request.match_info["kind"], request.match_info["sha"]
    request.app[BLOBS].parts.part_path(kind, sha)  # ValueError unless a kind and a sha256
    return kind, sha


async def blob_state(request: web.Request) -> web.Response:
    try:
        kind, sha = _blob(request)
    except ValueError as e:
        return _refused(400, "invalid_request", str(e))
    held = await asyncio.get_running_loop().run_in_executor(None, request.app[BLOBS].parts.held, kind, sha)
    return web.json_response({"complete": held.complete, "held": held.size})


async def put_blob(request: web.Request) -> web.Response:
    receiver: BlobReceiver = request.app[BLOBS]
    try:
        kind, sha = _blob(request)
        offset, size = int(request.query["offset"]), int(request.query["size"])
    except (KeyError, ValueError) as e:
        return _refused(400, "invalid_request", f"Name a kind, a sha256, an offset and a size ({e}).")
    if not 0 <= offset <= size <= receiver.max_bytes:
        return _refused(413 if size > receiver.max_bytes else 400, "invalid_request",
                        f"offset {offset} and size {size} must satisfy 0 <= offset <= size <= "
                        f"{receiver.max_bytes}.")
    stall_s = receiver.settings.protocol.blob_stall_s
    try:
        async with receiver.holding(kind, sha, stall_s):
            return await _receive(request, receiver, kind, sha, offset, size, stall_s)
    except TimeoutError:  # _receive ends its own stalls: this is the wait for the lock
        return _refused(503, "busy", "Another stream of this blob is still arriving.")
    except OSError as e:  # full, read-only or failing disk: the sender tries again later
        problem = problem_of(e)
        receiver.health.failed(problem)
        return _refused(503, "storage_unavailable", f"This site cannot store photos now ({problem}).")


async def _receive(request, receiver: BlobReceiver, kind, sha, offset, size, stall_s):
    loop = asyncio.get_running_loop()
    parts = receiver.parts
    held = await loop.run_in_executor(None, parts.held, kind, sha)
    if held.complete or offset > held.size:
        # Answered without the bytes. A small body (a blob sent without asking first) is read
        # and dropped first, so the sender finishes writing it and the connection stays usable.
        if size - offset <= TOGETHER_BYTES:
            await _drain(request, size - offset, stall_s)
        if held.complete:
            return web.json_response({"complete": True, "held": held.size}, status=201)
        return _refused(409, "offset_past_held", f"Only {held.size} bytes are held.", held=held.size)
    part = await loop.run_in_executor(None, parts.open_at, kind, sha, offset)
    received, pending = offset, []
    try:
        while True:
            try:
                async with asyncio.timeout(stall_s):
                    chunk = await request.content.readany()
            except TimeoutError:
                log.info("blob %s/%s from site %s stalled at %d of %d bytes", kind, sha[:12],
                         request.headers.get("X-Site"), received, size)
                break
            except CUT as e:  # what arrived is kept below; the sender resumes after it
                log.info("blob %s/%s from site %s cut at %d of %d bytes: %r", kind, sha[:12],
                         request.headers.get("X-Site"), received, size, e)
                break
            if not chunk:
                break
            received += len(chunk)
            if received > size:
                await loop.run_in_executor(None, parts.drop, kind, sha)
                return _refused(400, "invalid_request", f"More than the {size} bytes announced.")
            pending.append(chunk)
            if sum(map(len, pending)) >= WRITE_BYTES:
                await loop.run_in_executor(None, part.write, b"".join(pending))
                pending = []
    finally:  # what arrived is kept, even when the stream was cut: the sender resumes after it
        if not part.closed and pending:
            part.write(b"".join(pending))
        part.close()
    if received < size:
        return web.json_response({"complete": False, "held": received}, status=202)
    try:
        await loop.run_in_executor(None, parts.finish, kind, sha)
    except DigestMismatch as e:
        return _refused(422, "digest_mismatch", str(e))
    return web.json_response({"complete": True, "held": size}, status=201)


def parse_items(raw: str) -> list[tuple[str, str, int]]:
    """`kind:sha256:size,...` as (kind, sha256, size); ValueError unless each has three parts,
    the size a positive integer, and there are 1 to TOGETHER_ITEMS of them (the kinds and names
    are checked by the caller, the sizes against the route's cap too)."""
    items = []
    for item in raw.split(","):
        kind, sha, size = item.split(":")
        items.append((kind, sha, int(size)))
    if not 1 <= len(items) <= TOGETHER_ITEMS:
        raise ValueError(f"name 1 to {TOGETHER_ITEMS} blobs")
    if any(size <= 0 for _, _, size in items):
        raise ValueError("a blob has at least one byte")
    return items


def store_together(files, items: list[tuple[str, str, int]], body: bytes) -> list[bool]:
    """Each blob of the body stored durably under its name if its bytes are it (else False)."""
    blobs, offset = [], 0
    for kind, sha, size in items:
        blobs.append((kind, sha, bytes(body[offset:offset + size])))
        offset += size
    # Written together; one held already is claimed (it is about to be named).
    return files.keep_sound(blobs)


async def put_blobs(request: web.Request) -> web.Response:
    """Small blobs in one request (a tiny upload's photo and thumbnail): one request per peer
    and upload instead of one per blob. Not resumable: a cut one is sent again, each blob alone."""
    receiver: BlobReceiver = request.app[BLOBS]
    try:
        items = parse_items(request.query["items"])
        for kind, sha, _ in items:
            receiver.parts.part_path(kind, sha)  # ValueError unless a kind and a sha256
    except (KeyError, ValueError) as e:
        return _refused(400, "invalid_request", f"Name the blobs as kind:sha256:size,... ({e}).")
    if any(size > TOGETHER_BYTES for _, _, size in items):  # over this route's cap: 413
        return _refused(413, "invalid_request", f"A blob sent together is at most {TOGETHER_BYTES} "
                                                "bytes; send a larger one alone.")
    total = sum(size for _, _, size in items)
    if request.content_length is not None and request.content_length != total:
        return _refused(413 if request.content_length > total else 400, "invalid_request",
                        f"The body must be the {total} bytes named.")
    body = bytearray()
    try:
        async with asyncio.timeout(receiver.settings.protocol.blob_stall_s):
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > total:
                    return _refused(400, "invalid_request", f"More than the {total} bytes named.")
    except TimeoutError:
        return _refused(408, "stalled", "The blobs did not arrive in time; send them again.")
    except CUT:  # the sender went: nothing was stored, and it sends them again
        return _refused(400, "invalid_request", "The blobs were cut short; send them again.")
    if len(body) != total:
        return _refused(400, "invalid_request", f"{len(body)} bytes arrived of the {total} named.")
    try:
        stored = await asyncio.get_running_loop().run_in_executor(
            None, store_together, receiver.parts.files, items, bytes(body))
    except OSError as e:  # full, read-only or failing disk: the sender tries again later
        problem = problem_of(e)
        receiver.health.failed(problem)
        return _refused(503, "storage_unavailable", f"This site cannot store photos now ({problem}).")
    return web.json_response({"complete": stored}, status=201)


async def _drain(request: web.Request, most: int, stall_s: float) -> None:
    """Read and drop up to `most` bytes of the body (within the stall timeout)."""
    left = most + 1
    with contextlib.suppress(TimeoutError, *CUT):
        async with asyncio.timeout(stall_s):
            while left > 0 and (chunk := await request.content.read(min(left, 65536))):
                left -= len(chunk)


def setup_blob_routes(app: web.Application) -> None:
    app.router.add_get(BLOB_PATH, blob_state)
    app.router.add_put(BLOB_PATH, put_blob)
    app.router.add_put(BLOBS_PATH, put_blobs)
