"""The transport actors are handed: delivers a protocol message to a site, feeds the reply back.

Actors call `send` from their own threads; delivery runs on the site's event loop. A message
to this very site is dispatched in-process; to a peer it is an HMAC-signed POST. A delivery that
fails (refused, reset, timed out, not 200) comes back to the sender as `Unreachable`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import aiohttp

from domain.messages import AddPhotos, Prepare, Unreachable, from_wire, to_wire
from web.hmac_auth import signed_headers

log = logging.getLogger(__name__)
MESSAGE_PATH = "/internal/v1/messages"


def photo_attachments(message, files) -> dict[str, str]:
    """The photo and thumbnail bytes a Prepare of an upload carries to a peer (base64)."""
    if not (isinstance(message, Prepare) and isinstance(message.payload, AddPhotos)):
        return {}
    attachments = {}
    for photo in message.payload.photos:
        attachments[f"photo:{photo.sha256}"] = files.read("photo", photo.sha256)
        attachments[f"thumb:{photo.thumb_sha256}"] = files.read("thumb", photo.thumb_sha256)
    return {k: base64.b64encode(v).decode() for k, v in attachments.items()}


class Transport:
    def __init__(self, settings, site: int, loop, dispatch_local, files):
        self.settings = settings
        self.site = site
        self.loop = loop
        self.dispatch_local = dispatch_local
        self.files = files
        self.session: aiohttp.ClientSession | None = None

    def send(self, site: int, message, reply) -> None:
        """Thread-safe; `reply` receives the answer (or Unreachable), or nothing if none."""
        copies = 2 if self.settings.protocol.duplicate_delivery else 1
        for _ in range(copies):
            asyncio.run_coroutine_threadsafe(self._deliver(site, message, reply), self.loop)

    async def _deliver(self, site: int, message, reply) -> None:
        try:
            if site == self.site:
                answer = await self.dispatch_local(message)
            else:
                answer = await self.post(site, message)
        except Exception as e:  # any failure to deliver is the same to the protocol
            log.info("site %d: %s to site %d failed: %r", self.site, type(message).__name__, site, e)
            answer = Unreachable(site, message)
        if answer is not None:
            reply(answer)

    async def post(self, site: int, message):
        attachments = await self.loop.run_in_executor(None, photo_attachments, message, self.files)
        body = json.dumps({"message": to_wire(message), "attachments": attachments}).encode()
        headers = signed_headers(self.settings.secret, self.site, "POST", MESSAGE_PATH, body)
        headers["Content-Type"] = "application/json"
        url = self.settings.peer_url(site) + MESSAGE_PATH
        timeout = aiohttp.ClientTimeout(total=self.settings.protocol.request_timeout_s)
        async with self.session.post(url, data=body, headers=headers, timeout=timeout) as resp:
            if resp.status != 200:
                raise ConnectionError(f"site {site} answered {resp.status}")
            data = await resp.json()
        reply = data.get("reply")
        return from_wire(reply) if reply is not None else None
