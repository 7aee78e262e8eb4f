"""The transport over channels (web.peers.channel): `send` and `post` as web.peers.transport's
batches over HTTP have them, one Channel per peer, and the dial that opens one: the signed
upgrade (`GET /internal/v1/channel`), then the peer's proof that it holds the secret, checked
before anything is sent.
"""

from __future__ import annotations

import asyncio
import hmac

import aiohttp

from domain.messages import Unreachable
from web.peers.auth import NONCE_HEADER, proof, signed_headers
from web.peers.channel import (
    CHANNEL_PATH,
    CLOSE_WAIT_S,
    HEARTBEAT_S,
    MAX_FRAME_BYTES,
    Channel,
    ProofMissing,
)
from web.peers.transport import PeerRefused, Outgoing, Transport, decode_json


class ChannelTransport(Transport):
    """The transport over channels: the same `send` and `post` as web.peers.transport's batches
    over HTTP (which stay, behind `protocol.peer_channel = "http"`)."""

    def __init__(self, settings, site: int, loop, dispatch_local):
        super().__init__(settings, site, loop, dispatch_local)
        self.channels: dict[int, Channel] = {}

    def _channel(self, site: int) -> Channel:
        """On the loop, which alone touches the channels."""
        if site not in self.channels:
            self.channels[site] = Channel(site, lambda: self.dial(site), self.refusals,
                                          lambda peer, ok: self.heard(peer, ok))
        return self.channels[site]

    def open_channels(self) -> None:
        """Dial every peer now (at start), so that the first transaction after a start does not
        wait for the channels' dials; a peer not up yet is dialled again with back-off."""
        for site in self.settings.sites:
            if site != self.site:
                self._channel(site).start()

    def _queue(self, site: int, item: Outgoing) -> None:
        reply = item.reply
        deliver = (lambda answer: None) if reply is None else \
            (lambda answer: answer is not None and reply(answer))
        self._channel(site).put(item.message, self.settings.protocol.request_timeout_s, deliver)

    async def post(self, site: int, message, timeout: float | None = None):
        answer = self.loop.create_future()

        def deliver(reply) -> None:
            if not answer.done():
                answer.set_result(reply)

        channel = self._channel(site)
        pending = channel.put(message, timeout or self.settings.protocol.request_timeout_s, deliver)
        reply = await answer
        if isinstance(reply, Unreachable):
            if pending.sent_at is None and isinstance(channel.dial_error, aiohttp.ClientConnectorError):
                # Never sent, the peer refused connections: callers tell this definite failure
                # from one that may have been delivered (web.voting), as with a request.
                raise channel.dial_error
            raise ConnectionError(f"site {site} did not answer {type(message).__name__}")
        return reply

    async def dial(self, site: int) -> aiohttp.ClientWebSocketResponse:
        """A channel to `site`, open and proven; PeerRefused (401), or another error."""
        headers = signed_headers(self.settings.secret, self.site, "GET", CHANNEL_PATH)
        url = self.settings.peer_url(site) + CHANNEL_PATH
        async with asyncio.timeout(self.settings.protocol.request_timeout_s):
            try:
                ws = await self.session.ws_connect(
                    url, headers=headers, max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_WAIT_S), autoclose=True)
            except aiohttp.WSServerHandshakeError as e:
                if e.status == 401:
                    raise refusal_in_headers(site, e.headers) from None
                raise
            try:
                frame = await ws.receive()
                expected = proof(self.settings.secret, site, headers[NONCE_HEADER])
                answer = decode_json(frame.data) if frame.type is aiohttp.WSMsgType.BINARY else None
                if not (isinstance(answer, dict) and
                        hmac.compare_digest(str(answer.get("proof", "")), expected)):
                    raise ProofMissing(f"site {site} did not prove it holds our secret")
            except BaseException:
                await ws.close()
                raise
        return ws

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self.channels.values()))


def refusal_in_headers(site: int, headers) -> PeerRefused:
    """A refused upgrade's reason: a WebSocket client reads no body, so the peer repeats it in
    headers (web.peers.internal_api.refused)."""
    headers = headers or {}
    answer = {"reason": headers.get("X-Refusal-Reason", "unknown"),
              "message": headers.get("X-Refusal-Message", "")}
    try:
        answer["skew_s"] = float(headers["X-Refusal-Skew"])
    except (KeyError, ValueError):
        pass
    return PeerRefused(site, 401, answer)
