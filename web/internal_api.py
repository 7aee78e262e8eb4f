"""The site-to-site API: one authenticated endpoint that takes a protocol message and answers.

Photos travel inside an upload's Prepare; they are verified and written durably here, before
the participant sees the Prepare, so a yes vote always names files that are on disk.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from domain.errors import StorageUnavailable
from domain.messages import Decision, Prepare, Query, RoundRequest, VoteReport, from_wire, to_wire
from web.hmac_auth import verify
from web.keys import SERVICE, SETTINGS
from web.peer_client import MESSAGE_PATH

REQUESTS = (Prepare, Decision, Query, VoteReport, RoundRequest)


def _decode_attachments(raw) -> list[tuple[str, str, bytes]]:
    if not isinstance(raw, dict):
        raise ValueError("attachments must be an object")
    decoded = []
    for key, value in raw.items():
        kind, _, sha = str(key).partition(":")
        if kind not in ("photo", "thumb"):
            raise ValueError(f"bad attachment {key!r}")
        decoded.append((kind, sha, base64.b64decode(value, validate=True)))
    return decoded


async def receive_message(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await request.read()
    if not verify(settings.secret, request.method, request.path, request.headers, body,
                  settings.protocol.hmac_max_skew_s):
        return web.json_response({"error": "unauthorized", "message": "Bad or stale signature."},
                                 status=401)
    try:
        data = json.loads(body)
        message = from_wire(data["message"])
        attachments = _decode_attachments(data.get("attachments", {}))
        if not isinstance(message, REQUESTS):
            raise ValueError("not a request message")
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error) as e:
        return web.json_response({"error": "invalid_message", "message": str(e)}, status=400)
    service = request.app[SERVICE]
    try:
        await service.store_attachments(attachments)
    except ValueError as e:  # a photo that does not match its checksum
        return web.json_response({"error": "invalid_message", "message": str(e)}, status=400)
    except StorageUnavailable as e:  # the sender takes it as unreachable: its prepare aborts
        return web.json_response({"error": e.code, "message": e.message}, status=503)
    reply = await service.dispatch(message)
    return web.json_response({"reply": to_wire(reply) if reply is not None else None})


def setup_internal_routes(app: web.Application) -> None:
    app.router.add_post(MESSAGE_PATH, receive_message)
