"""Persistent channels between sites: one WebSocket per directed pair of sites carries every
protocol message this site sends to a peer, and the peer's replies.

Site i dials site j (`GET /internal/v1/channel`, upgraded) for what i sends to j, and j's
replies come back on that connection: the directed link (i, j) carries i's messages and j's
replies, as a request and its answer did over HTTP, so a fault on one direction of a pair keeps
its meaning. The upgrade is signed like any internal request (web.peers.auth) and checked before
the peer upgrades; the peer's first frame proves it holds the secret too (an HMAC over our
nonce), and nothing is sent before that proof is checked. A message costs a frame, not a
request: no headers, no signature, no middlewares.

Frames are msgspec JSON. Ours: `{"messages": [{"id": n, "message": <to_wire>}, ...]}`, all that
waits when the writer runs (up to MAX_FRAME_MESSAGES). The peer's: `{"replies": [{"id": n,
"reply": <to_wire> | null | {"error": code}}, ...]}`, in the order they are ready.

Delivery is what HTTP gave: each message has a deadline (`protocol.request_timeout_s`, or
`post`'s timeout); one not answered by then, or in flight when the channel broke, comes back to
its sender as `Unreachable`, and the protocol retries it (duplicates are handled there). A
deadline passed with nothing heard since the message left makes the channel suspect (a
blackholed link looks alive forever): it is closed and dialled again. While no channel is up,
messages wait for the next dial (up to their deadlines), and fail with it: a peer that refuses
connections is known at once, as it was with a request per batch. A site dials every peer at
start (web.peers.channel_transport's `open_channels`), so its first transaction finds the channels open. Dials back off
(capped at BACKOFF_MAX_S, jittered) and go on while the peer is away, so a peer that comes back
gets its channel before the next message needs it; a message that comes to wait cuts the
back-off short (it is dialled for at once). Heartbeats close a channel that went quiet.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

from domain.messages import Unreachable
from domain.wire import to_wire
from web.peers.auth import proof
from web.peers.transport import PeerRefused, answer_of, decode_json, encode_json

log = logging.getLogger(__name__)
CHANNEL_PATH = "/internal/v1/channel"
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a frame, either way: the batch endpoint's cap
MAX_FRAME_MESSAGES = 256
HEARTBEAT_S = 5.0  # a channel silent this long is pinged; no pong within half of it closes it
CLOSE_WAIT_S = 1.0  # how long a closing side waits for the other's close frame
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 2.0


def backoff(attempt: int) -> float:
    """The pause before dial `attempt` (0: the first after a channel ended), jittered."""
    return random.uniform(0.5, 1.0) * min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(attempt, 10))


def proof_frame(secret: str, site: int, nonce: str) -> bytes:
    """The answering site's first frame: shows that `site` holds the secret."""
    return encode_json({"site": site, "proof": proof(secret, site, nonce)})


def encode_messages(batch: list[tuple[int, Any]]) -> bytes:
    return encode_json({"messages": [{"id": n, "message": to_wire(m)} for n, m in batch]})


def parse_replies(data: bytes) -> list[tuple[int, Any]]:
    """(id, reply on the wire) of a peer's frame; ValueError if it is not one."""
    frame = decode_json(data)
    if not isinstance(frame, dict) or not isinstance(frame.get("replies"), list):
        raise ValueError("a frame from the peer must be an object with a list of replies")
    replies = []
    for entry in frame["replies"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int) or "reply" not in entry:
            raise ValueError("a reply entry must hold an id and a reply")
        replies.append((entry["id"], entry["reply"]))
    return replies


def frames(batch: list[tuple[int, Any]]) -> list[bytes]:
    """The batch encoded in as few frames as fit the cap (halved until each fits)."""
    encoded = encode_messages(batch)
    if len(encoded) <= MAX_FRAME_BYTES or len(batch) == 1:
        return [encoded]
    half = len(batch) // 2
    return frames(batch[:half]) + frames(batch[half:])


class ProofMissing(ConnectionError):
    """The dialled site did not prove it holds our secret: we send it nothing."""


@dataclass(eq=False)
class Pending:
    message: Any
    deliver: Callable[[Any], None]  # gets the answer: a reply, None or Unreachable
    timer: asyncio.TimerHandle | None = None
    sent_at: float | None = None  # monotonic; None while waiting to be sent


class Channel:
    """What this site sends to one peer: the messages waiting for a channel, those in flight,
    and the task that dials, serves the channel and dials again. Runs on the site's loop."""

    def __init__(self, site: int, dial, refusals, heard):
        self.site = site
        self.dial = dial  # async () -> an open, proven ClientWebSocketResponse
        self.refusals = refusals
        self.heard = heard  # (site, ok)
        self.ids = itertools.count(1)
        self.waiting: OrderedDict[int, Pending] = OrderedDict()
        self.in_flight: dict[int, Pending] = {}
        self.ready = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_heard = 0.0  # monotonic: when the peer last sent a frame on this channel
        self.heard_on_channel = False
        self.runner: asyncio.Task | None = None
        self.closers: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        self.closing = False
        self.frames_sent = 0
        self.dial_error: BaseException | None = None  # why the last dial failed; None once one worked

    def put(self, message, deadline_s: float, deliver: Callable[[Any], None]) -> Pending:
        loop = asyncio.get_running_loop()
        n = next(self.ids)
        pending = Pending(message, deliver)
        pending.timer = loop.call_later(deadline_s, self._expire, n)
        self.waiting[n] = pending
        self.ready.set()
        self.start()
        return pending

    def start(self) -> None:
        """Dial now (and again whenever the channel ends) if not already dialling."""
        if self.runner is None and not self.closing:
            self.runner = asyncio.get_running_loop().create_task(self._run())

    def _expire(self, n: int) -> None:
        pending = self.waiting.pop(n, None) or self.in_flight.pop(n, None)
        if pending is None:
            return
        if pending.sent_at is not None and self.last_heard < pending.sent_at and self.ws is not None:
            log.info("channel to site %d: no answer within the deadline and nothing heard since; "
                     "dialling again", self.site)
            self._drop(self.ws)
        pending.deliver(Unreachable(self.site, pending.message))

    def _drop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Close a channel that cannot be trusted any more (once); the runner dials again."""
        if self.ws is not ws:
            return
        self.ws = None
        closer = asyncio.get_running_loop().create_task(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY))
        self.closers.add(closer)
        closer.add_done_callback(self.closers.discard)

    async def _run(self) -> None:
        attempt = 0
        while not self.closing:
            try:
                ws = await self.dial()
            except PeerRefused as e:
                self.heard(self.site, False)
                self.refusals.warning(f"{self.site}:{e.reason}", "site %d refuses our requests: %s",
                                      self.site, e)
                self._fail(self.waiting)  # retrying soon will not help: an operator must
                await self._pause(backoff(attempt := attempt + 1))
                continue
            except ProofMissing as e:
                self.heard(self.site, False)
                self.refusals.warning(f"{self.site}:proof", "site %d: %s", self.site, e)
                self._fail(self.waiting)
                await self._pause(backoff(attempt := attempt + 1))
                continue
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as e:
                if attempt == 0:
                    log.info("channel to site %d cannot be opened: %r; dialling again with back-off",
                             self.site, e)
                self.heard(self.site, False)
                self.dial_error = e
                self._fail(self.waiting)  # the dial they waited for failed, as a request would
                await self._pause(backoff(attempt := attempt + 1))
                continue
            self.dial_error = None
            await self._serve(ws)
            attempt = 0 if self.heard_on_channel else attempt + 1
            if not self.closing:
                await self._pause(backoff(attempt))

    async def _pause(self, seconds: float) -> None:
        """The back-off before the next dial, cut short by a message that comes to wait: a
        peer that is back (or that started after this site) costs a message no back-off, and
        one still away fails it at once, as a refused request did."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.waiting and not self.closing:
            self.ready.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self.ready.wait()
            except TimeoutError:
                return

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Until the channel ends: write what waits, deliver what comes back."""
        self.ws, self.heard_on_channel = ws, False
        writer = asyncio.get_running_loop().create_task(self._write(ws))
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.BINARY or not self._received(frame.data):
                    break
        finally:
            writer.cancel()
            self.ws = None
            if not self.closing:
                self.heard(self.site, False)
                log.info("channel to site %d closed (code %s, %r); %d message(s) in flight come "
                         "back unreachable", self.site, ws.close_code, ws.exception(), len(self.in_flight))
                self._fail(self.in_flight)
            if not ws.closed:
                await ws.close()

    def _received(self, data: bytes) -> bool:
        """Deliver a frame's replies; False when it is not a frame of replies (the channel is
        then closed: the peer does not speak this protocol)."""
        try:
            replies = parse_replies(data)
        except ValueError as e:
            log.warning("channel to site %d: a frame that is not replies (%s); closing it", self.site, e)
            return False
        self.last_heard, self.heard_on_channel = time.monotonic(), True
        self.heard(self.site, True)
        for n, reply in replies:
            pending = self.in_flight.pop(n, None)
            if pending is not None:  # else its deadline passed: it was answered Unreachable
                pending.timer.cancel()
                pending.deliver(answer_of(self.site, pending.message, reply))
        return True

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Everything waiting when the writer runs leaves together; nothing more once the
        channel was dropped (what waits then goes on the next one)."""
        try:
            while True:
                self.ready.clear()
                while self.waiting and self.ws is ws:
                    batch = self._take()
                    for frame in frames(batch):
                        await ws.send_bytes(frame)
                        self.frames_sent += 1
                await self.ready.wait()
        except (ConnectionError, aiohttp.ClientError) as e:  # the reader sees the channel end
            log.info("channel to site %d: sending failed: %r", self.site, e)
            self._drop(ws)

    def _take(self) -> list[tuple[int, Any]]:
        now, batch = time.monotonic(), []
        while self.waiting and len(batch) < MAX_FRAME_MESSAGES:
            n, pending = self.waiting.popitem(last=False)
            pending.sent_at = now
            self.in_flight[n] = pending
            batch.append((n, pending.message))
        return batch

    def _fail(self, pendings: dict[int, Pending]) -> None:
        failed = list(pendings.values())
        pendings.clear()
        for pending in failed:
            pending.timer.cancel()
            pending.deliver(Unreachable(self.site, pending.message))

    async def close(self) -> None:
        """The site is stopping: the channel ends, and nothing is delivered any more."""
        self.closing = True
        for pending in (*self.waiting.values(), *self.in_flight.values()):
            pending.timer.cancel()
        self.waiting.clear()
        self.in_flight.clear()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self.runner is not None:
            self.runner.cancel()
            await asyncio.gather(self.runner, *self.closers, return_exceptions=True)
