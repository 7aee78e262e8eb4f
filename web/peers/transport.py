"""The transport actors are handed: delivers a protocol message to a site, feeds the reply back.

This module's Transport sends batches as HTTP requests (`protocol.peer_channel = "http"`);
web.peers.channel_transport's ChannelTransport, the default, keeps its API and its delivery
(replies or Unreachable, refusals logged here) but carries the messages on one WebSocket per
peer.

Actors call `send` from their own threads; delivery runs on the site's event loop. A message
to this very site is dispatched in-process. Messages to a peer travel in batches: one
HMAC-signed POST carries any number of them, because a request's fixed cost (signing, parsing,
a round trip) is most of what a small message costs. Messages are small: photos reach the
peers before the prepare that names them (web.peers.blob_shipping), never inside it.
A delivery that fails (refused, reset, timed out, not 200, refused by the peer) comes back to
the sender as `Unreachable`. A peer that refuses our signature (401) says why; that is logged
as a WARNING once per peer, cause and interval, since it needs an operator (a secret or a
clock to fix) and retrying will not help.

The batch body: a 4-byte big-endian header length, then the JSON header
`{"messages": [{"message": <to_wire>}, ...]}` and nothing after it (the format has room for
bytes after the header, which no message carries any more). The answer is JSON
`{"replies": [...]}`, one per message in order: its reply on the wire, null, or `{"error": code}`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp
import msgspec

from actors.role_actor import Failed
from domain.messages import Unreachable
from domain.wire import from_wire, to_wire
from eventstore.repeated_log import RepeatedLog
from web.peers.auth import signed_headers

log = logging.getLogger(__name__)
BATCH_PATH = "/internal/v1/batch"
PING_PATH = "/internal/v1/ping"
REFUSAL_LOG_INTERVAL_S = 60.0
HEADER_LENGTH = struct.Struct(">I")

# Requests in flight to one peer. With one, every message would wait for the request before it
# (a slow reply would hold up the small messages behind it); a few are
# enough to keep a peer busy. Beyond them, a burst (many transactions at once, decisions resent
# after a partition heals) costs a few large requests instead of one request per message.
MAX_IN_FLIGHT = 4
MAX_BATCH_MESSAGES = 64


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


# JSON on the wire is encoded and parsed by msgspec (in C; ~3x the standard library's speed).
# Parsing raises msgspec.DecodeError, a ValueError, on anything that is not JSON.
encode_json = msgspec.json.encode
decode_json = msgspec.json.decode


def encode_batch(batch: list[Outgoing]) -> bytes:
    header = encode_json({"messages": [{"message": to_wire(item.message)} for item in batch]})
    return HEADER_LENGTH.pack(len(header)) + header


def take_batch(waiting: deque[Outgoing]) -> list[Outgoing]:
    """The next request's messages, oldest first, at most MAX_BATCH_MESSAGES (at least one)."""
    batch = [waiting.popleft()]
    while waiting and len(batch) < MAX_BATCH_MESSAGES:
        batch.append(waiting.popleft())
    return batch


def answer_of(site: int, message, reply):
    """A reply on the wire as the sender gets it: the message, None, or Unreachable for an
    error entry (the peer could not handle it: the same to the protocol as no answer)."""
    if reply is None:
        return None
    if isinstance(reply, dict) and "type" not in reply:
        log.info("site %d refused %s: %s", site, type(message).__name__, reply.get("error"))
        return Unreachable(site, message)
    try:
        return from_wire(reply)
    except (ValueError, KeyError, TypeError) as e:
        log.info("site %d answered %s with something unreadable: %s", site, type(message).__name__, e)
        return Unreachable(site, message)


class PeerLink:
    """The requests to one peer: a message goes at once while fewer than MAX_IN_FLIGHT are out;
    otherwise it waits, and all that waited leave together when a request completes."""

    def __init__(self, site: int, post_batch, refusals: RepeatedLog, heard=lambda site, ok: None):
        self.site = site
        self.post_batch = post_batch
        self.refusals = refusals
        self.heard = heard  # (site, whether it answered): what reachability learns from traffic
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
            answers = await self.post_batch(self.site, batch)
        except PeerRefused as e:
            self.heard(self.site, False)
            self.refusals.warning(f"{self.site}:{e.reason}", "site %d refuses our requests: %s",
                                  self.site, e)
            return [Unreachable(self.site, item.message) for item in batch]
        except Exception as e:  # any failure to deliver is the same to the protocol
            log.info("%d messages to site %d failed: %r", len(batch), self.site, e)
            self.heard(self.site, False)
            return [Unreachable(self.site, item.message) for item in batch]
        self.heard(self.site, True)
        return answers


class Transport:
    def __init__(self, settings, site: int, loop, dispatch_local):
        self.settings = settings
        self.site = site
        self.loop = loop
        self.dispatch_local = dispatch_local
        self.session: aiohttp.ClientSession | None = None
        self.links: dict[int, PeerLink] = {}
        self.refusals = RepeatedLog(log, REFUSAL_LOG_INTERVAL_S)
        self.heard = lambda site, ok: None  # set by the site: web.peers.reachability
        # set by the site: SiteService.hand_over, the hot path of a message to this site itself
        self.hand_over = lambda message, answered: False
        self.call_on_loop = loop.call_soon_threadsafe  # set by the site: web.loop_calls

    def open_channels(self) -> None:
        """Nothing to open ahead: each batch is a request of its own
        (web.peers.channel_transport opens its channels here)."""

    def send(self, site: int, message, reply) -> None:
        """Thread-safe; `reply` receives the answer (or Unreachable), or nothing if none."""
        copies = 2 if self.settings.protocol.duplicate_delivery else 1
        for _ in range(copies):
            if site == self.site:
                if not self.hand_over(message, self._local_answer(message, reply)):
                    asyncio.run_coroutine_threadsafe(self._deliver_here(message, reply), self.loop)
            else:
                self.call_on_loop(self._queue, site, Outgoing(message, reply))

    def _queue(self, site: int, item: Outgoing) -> None:
        """On the loop, which alone touches the links."""
        if site not in self.links:
            self.links[site] = PeerLink(site, self.post_batch, self.refusals,
                                        lambda peer, ok: self.heard(peer, ok))
        self.links[site].put(item)

    async def close(self) -> None:
        """Nothing of its own to close: its requests end with the session."""

    def _local_answer(self, message, reply):
        """Where an actor's answer to a message handed over here goes: to `reply`, as
        `_deliver_here` gives it (a failure is the same to the protocol as no answer)."""
        def answered(answer) -> None:
            if isinstance(answer, Failed):
                log.info("site %d: %s to itself failed: %r", self.site, type(message).__name__, answer.error)
                answer = Unreachable(self.site, message)
            if answer is not None:
                reply(answer)

        return answered

    async def _deliver_here(self, message, reply) -> None:
        try:
            answer = await self.dispatch_local(message)
        except Exception as e:  # the same to the protocol as a peer that failed
            log.info("site %d: %s to itself failed: %r", self.site, type(message).__name__, e)
            answer = Unreachable(self.site, message)
        if answer is not None:
            reply(answer)

    async def post(self, site: int, message, timeout: float | None = None):
        """One message in a request of its own: its reply, or an exception if it failed.
        `timeout`: for a request that may take longer than a protocol step (seconds)."""
        answer = (await self.post_batch(site, [Outgoing(message, None)], timeout))[0]
        if isinstance(answer, Unreachable):
            raise ConnectionError(f"site {site} refused {type(message).__name__}")
        return answer

    async def post_batch(self, site: int, batch: list[Outgoing], timeout: float | None = None) -> list:
        """Each message's reply, None, or Unreachable when the peer refused that message."""
        body = encode_batch(batch)
        headers = signed_headers(self.settings.secret, self.site, "POST", BATCH_PATH, body)
        headers["Content-Type"] = "application/octet-stream"
        url = self.settings.peer_url(site) + BATCH_PATH
        limit = aiohttp.ClientTimeout(total=timeout or self.settings.protocol.request_timeout_s)
        async with self.session.post(url, data=body, headers=headers, timeout=limit) as resp:
            if resp.status == 401:
                raise await refusal_of(site, resp)
            if resp.status != 200:
                raise ConnectionError(f"site {site} answered {resp.status}")
            raw = await resp.read()
        try:
            replies = decode_json(raw)["replies"]
        except (ValueError, KeyError, TypeError) as e:
            raise ConnectionError(f"site {site} answered with no list of replies: {e}") from None
        if len(replies) != len(batch):
            raise ConnectionError(f"site {site} answered {len(replies)} of {len(batch)} messages")
        return [answer_of(site, item.message, reply) for item, reply in zip(batch, replies)]

