"""The transport actors are handed: delivers a protocol message to a site, feeds the reply back.

Actors call `send` from their own threads; delivery runs on the site's event loop. A message
to this very site is dispatched in-process. Messages to a peer travel in batches: one
HMAC-signed POST carries any number of them, photos as raw bytes after a JSON header, because a
request's fixed cost (signing, parsing, a round trip) is most of what a small message costs.
A delivery that fails (refused, reset, timed out, not 200, refused by the peer) comes back to
the sender as `Unreachable`. A peer that refuses our signature (401) says why; that is logged
as a WARNING once per peer, cause and interval, since it needs an operator (a secret or a
clock to fix) and retrying will not help.

The batch body: a 4-byte big-endian header length, the JSON header
`{"messages": [{"message": <to_wire>, "attachments": [[kind, sha256, offset, length], ...]}]}`,
then the attachments' bytes (offsets count from the end of the header). The answer is JSON
`{"replies": [...]}`, one per message in order: its reply on the wire, null, or `{"error": code}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

from domain.messages import AddPhotos, Prepare, Unreachable, from_wire, to_wire
from eventstore.repeated_log import RepeatedLog
from web.peers.auth import signed_headers

log = logging.getLogger(__name__)
BATCH_PATH = "/internal/v1/batch"
PING_PATH = "/internal/v1/ping"
REFUSAL_LOG_INTERVAL_S = 60.0
HEADER_LENGTH = struct.Struct(">I")

# Requests in flight to one peer. With one, every message would wait for the request before it
# (a photo prepare, or a slow reply, would hold up the small messages behind it); a few are
# enough to keep a peer busy. Beyond them, a burst (many transactions at once, decisions resent
# after a partition heals) costs a few large requests instead of one request per message.
MAX_IN_FLIGHT = 4
MAX_BATCH_MESSAGES = 64
MAX_BATCH_BYTES = 16 * 1024 * 1024  # of attachments; a message over it still goes, alone

Attachment = tuple[str, str, bytes]  # (kind, sha256, data)


class PeerRefused(ConnectionError):
    """A peer answered 401: it did not authenticate our request, and says why."""

    def __init__(self, site: int, status: int, answer: dict):
        self.site = site
        self.status = status
        self.reason = str(answer.get("reason", "unknown"))
        self.detail = str(answer.get("message", ""))
        self.skew_s = answer.get("skew_s")
        super().__init__(f"site {site} refused our request ({self.reason}): {self.detail}")


async def refusal_of(site: int, resp: aiohttp.ClientResponse) -> PeerRefused:
    try:
        answer = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        answer = {}
    return PeerRefused(site, resp.status, answer if isinstance(answer, dict) else {})


@dataclass(frozen=True)
class Outgoing:
    message: Any
    reply: Callable[[Any], None] | None
    attachments: tuple[Attachment, ...] = ()

    @property
    def size(self) -> int:
        return sum(len(data) for _, _, data in self.attachments)


def carries_photos(message) -> bool:
    return isinstance(message, Prepare) and isinstance(message.payload, AddPhotos)


def photo_attachments(message, files) -> tuple[Attachment, ...]:
    """The photo and thumbnail bytes a Prepare of an upload carries to a peer (a disk read)."""
    if not carries_photos(message):
        return ()
    attachments = {}
    for photo in message.payload.photos:
        attachments["photo", photo.sha256] = files.read("photo", photo.sha256)
        attachments["thumb", photo.thumb_sha256] = files.read("thumb", photo.thumb_sha256)
    return tuple((kind, sha, data) for (kind, sha), data in attachments.items())


def encode_batch(batch: list[Outgoing]) -> bytes:
    entries, chunks, offset = [], [], 0
    for item in batch:
        refs = []
        for kind, sha, data in item.attachments:
            refs.append([kind, sha, offset, len(data)])
            chunks.append(data)
            offset += len(data)
        entries.append({"message": to_wire(item.message), "attachments": refs})
    header = json.dumps({"messages": entries}).encode()
    return b"".join([HEADER_LENGTH.pack(len(header)), header, *chunks])


def take_batch(waiting: deque[Outgoing]) -> list[Outgoing]:
    """The next request's messages, oldest first, within the batch limits (at least one)."""
    batch = [waiting.popleft()]
    size = batch[0].size
    while waiting and len(batch) < MAX_BATCH_MESSAGES and size + waiting[0].size <= MAX_BATCH_BYTES:
        size += waiting[0].size
        batch.append(waiting.popleft())
    return batch


class PeerLink:
    """The requests to one peer: a message goes at once while fewer than MAX_IN_FLIGHT are out;
    otherwise it waits, and all that waited leave together when a request completes."""

    def __init__(self, site: int, post_batch, refusals: RepeatedLog):
        self.site = site
        self.post_batch = post_batch
        self.refusals = refusals
        self.waiting: deque[Outgoing] = deque()
        self.in_flight = 0
        self.requests: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def put(self, item: Outgoing) -> None:
        """Called on the loop."""
        self.waiting.append(item)
        self._pump()

    def _pump(self) -> None:
        while self.waiting and self.in_flight < MAX_IN_FLIGHT:
            self.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._request(take_batch(self.waiting)))
            self.requests.add(task)
            task.add_done_callback(self.requests.discard)

    async def _request(self, batch: list[Outgoing]) -> None:
        try:
            for item, answer in zip(batch, await self._answers(batch)):
                if answer is not None and item.reply is not None:
                    item.reply(answer)
        finally:
            self.in_flight -= 1
            self._pump()

    async def _answers(self, batch: list[Outgoing]) -> list:
        try:
            return await self.post_batch(self.site, batch)
        except PeerRefused as e:
            self.refusals.warning(f"{self.site}:{e.reason}", "site %d refuses our requests: %s",
                                  self.site, e)
            return [Unreachable(self.site, item.message) for item in batch]
        except Exception as e:  # any failure to deliver is the same to the protocol
            log.info("%d messages to site %d failed: %r", len(batch), self.site, e)
            return [Unreachable(self.site, item.message) for item in batch]


class Transport:
    def __init__(self, settings, site: int, loop, dispatch_local, files):
        self.settings = settings
        self.site = site
        self.loop = loop
        self.dispatch_local = dispatch_local
        self.files = files
        self.session: aiohttp.ClientSession | None = None
        self.links: dict[int, PeerLink] = {}
        self.refusals = RepeatedLog(log, REFUSAL_LOG_INTERVAL_S)

    def send(self, site: int, message, reply) -> None:
        """Thread-safe; `reply` receives the answer (or Unreachable), or nothing if none."""
        copies = 2 if self.settings.protocol.duplicate_delivery else 1
        for _ in range(copies):
            if site == self.site:
                asyncio.run_coroutine_threadsafe(self._deliver_here(message, reply), self.loop)
            elif carries_photos(message):
                asyncio.run_coroutine_threadsafe(self._read_and_queue(site, message, reply), self.loop)
            else:
                self.loop.call_soon_threadsafe(self._queue, site, Outgoing(message, reply))

    def _queue(self, site: int, item: Outgoing) -> None:
        """On the loop, which alone touches the links."""
        if site not in self.links:
            self.links[site] = PeerLink(site, self.post_batch, self.refusals)
        self.links[site].put(item)

    async def _deliver_here(self, message, reply) -> None:
        try:
            answer = await self.dispatch_local(message)
        except Exception as e:  # the same to the protocol as a peer that failed
            log.info("site %d: %s to itself failed: %r", self.site, type(message).__name__, e)
            answer = Unreachable(self.site, message)
        if answer is not None:
            reply(answer)

    async def _read_and_queue(self, site: int, message, reply) -> None:
        try:
            attachments = await self.loop.run_in_executor(None, photo_attachments, message, self.files)
        except Exception as e:  # a photo this site cannot read: the peer cannot be prepared
            log.info("site %d: cannot read the photos of %s: %r", self.site, message.txn_id, e)
            reply(Unreachable(site, message))
            return
        self._queue(site, Outgoing(message, reply, attachments))

    async def post(self, site: int, message):
        """One message in a request of its own: its reply, or an exception if it failed."""
        attachments = await self.loop.run_in_executor(None, photo_attachments, message, self.files)
        answer = (await self.post_batch(site, [Outgoing(message, None, attachments)]))[0]
        if isinstance(answer, Unreachable):
            raise ConnectionError(f"site {site} refused {type(message).__name__}")
        return answer

    async def post_batch(self, site: int, batch: list[Outgoing]) -> list:
        """Each message's reply, None, or Unreachable when the peer refused that message."""
        body = encode_batch(batch)
        headers = signed_headers(self.settings.secret, self.site, "POST", BATCH_PATH, body)
        headers["Content-Type"] = "application/octet-stream"
        url = self.settings.peer_url(site) + BATCH_PATH
        timeout = aiohttp.ClientTimeout(total=self.settings.protocol.request_timeout_s)
        async with self.session.post(url, data=body, headers=headers, timeout=timeout) as resp:
            if resp.status == 401:
                raise await refusal_of(site, resp)
            if resp.status != 200:
                raise ConnectionError(f"site {site} answered {resp.status}")
            replies = (await resp.json())["replies"]
        if len(replies) != len(batch):
            raise ConnectionError(f"site {site} answered {len(replies)} of {len(batch)} messages")
        return [self._answer(site, item, reply) for item, reply in zip(batch, replies)]

    def _answer(self, site: int, item: Outgoing, reply):
        if isinstance(reply, dict) and "type" not in reply:
            log.info("site %d refused %s: %s", site, type(item.message).__name__, reply.get("error"))
            return Unreachable(site, item.message)
        return from_wire(reply)
