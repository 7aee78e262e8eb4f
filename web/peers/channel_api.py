"""The answering end of a channel (web.peers.channel): `GET /internal/v1/channel`, upgraded to a
WebSocket once the authenticator (web.peers.internal_api) has checked the dialer's signature,
nonce and clock; nothing is read from an unauthenticated dialer.

The first frame proves this site holds the secret too. Then every frame from the dialer is a
batch of messages; each is handled as the batch endpoint handles it (concurrently, one that
fails gets an error entry of its own), and the replies that are ready together leave in one
frame. A frame past the cap is refused by aiohttp (the channel closes with 1009); a frame that
is not a batch closes the channel (1007); a message that is not a request gets an
`invalid_message` error under its id. Nothing a peer sends stops the site.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from eventstore.repeated_log import RepeatedLog
from web.keys import SERVICE, SETTINGS, SITE
from web.peers.auth import NONCE_HEADER, SITE_HEADER
from web.peers.channel import (
    CHANNEL_PATH,
    CLOSE_WAIT_S,
    HEARTBEAT_S,
    MAX_FRAME_BYTES,
    MAX_FRAME_MESSAGES,
    proof_frame,
)
from web.peers.internal_api import answer, parse_message, wire_answer
from web.peers.transport import REFUSAL_LOG_INTERVAL_S, decode_json, encode_json

log = logging.getLogger(__name__)
OPEN_CHANNELS = web.AppKey("open_channels", set)
MALFORMED = web.AppKey("malformed_frames_log", RepeatedLog)  # once per interval, however many


class FrameRefused(ValueError):
    """A frame that is not a batch of messages."""


def parse_frame(data: bytes) -> list[tuple[int, object]]:
    """(id, message or the error that message is) of a dialer's frame; FrameRefused if the
    frame itself is malformed."""
    try:
        frame = decode_json(data)
    except ValueError as e:
        raise FrameRefused(f"not JSON: {e}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("messages"), list):
        raise FrameRefused("a frame must be an object with a list of messages")
    entries = []
    for entry in frame["messages"]:
        if not isinstance(entry, dict) or set(entry) != {"id", "message"} or \
                not isinstance(entry["id"], int):
            raise FrameRefused("a message entry must be an object with an id and a message")
        try:
            entries.append((entry["id"], parse_message(entry["message"])))
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            entries.append((entry["id"], e))
    return entries


class Replies:
    """The replies of one channel: each message handled on its own task; the replies ready
    together leave in one frame, written by one flush at a time."""

    def __init__(self, ws: web.WebSocketResponse, service):
        self.ws = ws
        self.service = service
        self.ready: list[dict] = []
        self.flushing = False
        self.tasks: set[asyncio.Task] = set()

    def take(self, n: int, message) -> None:
        if not isinstance(message, Exception) and self.service.hand_over(message, self._answered(n)):
            return  # the hot path: no task; the actor's reply comes back through _answered
        task = asyncio.get_running_loop().create_task(self._answer(n, message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _answered(self, n: int):
        """Where an actor's reply to message `n` goes (from the actor's thread): onto the loop,
        in its wire form, as `answer` gives it."""
        call_on_loop = self.service.call_on_loop

        def answered(reply) -> None:
            call_on_loop(self._ready, n, wire_answer(reply))

        return answered

    async def _answer(self, n: int, message) -> None:
        if isinstance(message, Exception):
            reply = {"error": "invalid_message", "message": str(message)}
        else:
            reply = await answer(self.service, message)
        self._ready(n, reply)

    def _ready(self, n: int, reply) -> None:
        self.ready.append({"id": n, "reply": reply})
        if not self.flushing:
            self.flushing = True
            task = asyncio.get_running_loop().create_task(self._flush())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _flush(self) -> None:
        try:
            while self.ready and not self.ws.closed:
                frame, self.ready = self.ready[:MAX_FRAME_MESSAGES], self.ready[MAX_FRAME_MESSAGES:]
                await self.ws.send_bytes(encode_json({"replies": frame}))
        except ConnectionError:  # the channel went: the dialer takes these as unreachable
            self.ready.clear()
        finally:
            self.flushing = False

    async def finish(self) -> None:
        """The channel ended: every message it brought is still handled to its end, as a
        request is when its client has gone (a frame and the dialer's close often arrive
        together: cancelling would drop messages never begun, such as a late copy of a round
        request the dialer has since withdrawn); their replies find the channel closed and
        are dropped."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def serve_channel(request: web.Request) -> web.WebSocketResponse:
    """Reached only when the dialer's signature was good."""
    settings, site = request.app[SETTINGS], request.app[SITE]
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S, timeout=CLOSE_WAIT_S)
    try:
        await ws.prepare(request)
    except ConnectionError:  # the dialer (or this site, stopping) closed it before the upgrade
        return web.Response(status=503, text="The connection closed before the upgrade.")
    request.app[OPEN_CHANNELS].add(ws)
    replies = Replies(ws, request.app[SERVICE])
    try:
        await ws.send_bytes(proof_frame(settings.secret, site, request.headers[NONCE_HEADER]))
        async for frame in ws:
            if frame.type is not WSMsgType.BINARY:
                break  # an error (a frame past the cap: aiohttp closed the channel with 1009)
            try:
                entries = parse_frame(frame.data)
            except FrameRefused as e:
                request.app[MALFORMED].warning("frame", "closing the channel from site %s: %s",
                                  request.headers.get(SITE_HEADER), e)
                await ws.close(code=WSCloseCode.INVALID_TEXT, message=str(e)[:120].encode())
                break
            for n, message in entries:
                replies.take(n, message)
    except ConnectionError:  # the dialer went away mid-write
        pass
    finally:
        request.app[OPEN_CHANNELS].discard(ws)
        await replies.finish()
    return ws


async def close_channels(app: web.Application) -> None:
    """On shutdown: every dialer is told this site is going away (they dial again later)."""
    await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"site stopping")
                           for ws in list(app[OPEN_CHANNELS])), return_exceptions=True)


def setup_channel_routes(app: web.Application) -> None:
    """After web.peers.internal_api's setup: its authenticator guards this route too."""
    app[OPEN_CHANNELS] = set()
    app[MALFORMED] = RepeatedLog(log, REFUSAL_LOG_INTERVAL_S)
    app.router.add_get(CHANNEL_PATH, serve_channel)
    app.on_shutdown.append(close_channels)
