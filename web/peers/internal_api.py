"""The site-to-site API: one authenticated endpoint that takes a batch of protocol messages
(the format is described in web.peers.transport) and answers each of them.

Photos travel inside an upload's Prepare; they are verified and written durably here, before
the participant sees the Prepare, so a yes vote always names files that are on disk. The
messages of a batch are independent: they are handled concurrently, and one that fails gets an
error entry of its own, which touches neither its neighbours nor the request as a whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from domain.errors import PhotoSessionError
from domain.messages import Decision, Prepare, Query, RoundRequest, VoteReport, from_wire, to_wire
from web.peers.auth import verify
from web.keys import SERVICE, SETTINGS
from web.peers.transport import BATCH_PATH, HEADER_LENGTH, Attachment

log = logging.getLogger(__name__)
REQUESTS = (Prepare, Decision, Query, VoteReport, RoundRequest)
KINDS = ("photo", "thumb")


@dataclass(frozen=True)
class Incoming:
    message: Any
    attachments: tuple[Attachment, ...]


def parse_batch(body: bytes) -> list[Incoming]:
    """The messages of a batch body; ValueError (or KeyError, TypeError) if it is malformed."""
    if len(body) < HEADER_LENGTH.size:
        raise ValueError("the body is shorter than its header's length")
    (length,) = HEADER_LENGTH.unpack_from(body)
    start = HEADER_LENGTH.size + length
    if start > len(body):
        raise ValueError("the header's length runs past the body")
    header = json.loads(body[HEADER_LENGTH.size:start])
    if not isinstance(header, dict) or not isinstance(header.get("messages"), list):
        raise ValueError("the header must be an object with a list of messages")
    attached = memoryview(body)[start:]
    return [_parse_entry(entry, attached) for entry in header["messages"]]


def _parse_entry(entry, attached: memoryview) -> Incoming:
    if not isinstance(entry, dict) or not isinstance(entry.get("attachments", []), list):
        raise ValueError("a message entry must be an object with a list of attachments")
    message = from_wire(entry["message"])
    if not isinstance(message, REQUESTS):
        raise ValueError("not a request message")
    return Incoming(message, tuple(_attachment(ref, attached) for ref in entry.get("attachments", [])))


def _attachment(ref, attached: memoryview) -> Attachment:
    if not isinstance(ref, list) or len(ref) != 4:
        raise ValueError("an attachment is [kind, sha256, offset, length]")
    kind, sha, offset, length = ref
    if kind not in KINDS or not isinstance(sha, str):
        raise ValueError(f"bad attachment {kind!r}:{sha!r}")
    if type(offset) is not int or type(length) is not int or not 0 <= offset <= offset + length <= len(attached):
        raise ValueError(f"attachment {offset!r}+{length!r} lies outside the body")
    return kind, sha, bytes(attached[offset:offset + length])


async def _answer(service, item: Incoming):
    """One message's entry in the answer: its reply on the wire (or null), or why it failed."""
    try:
        await service.store_attachments(item.attachments)
        reply = await service.dispatch(item.message)
    except ValueError as e:  # a photo that does not match its checksum
        return {"error": "invalid_message", "message": str(e)}
    except PhotoSessionError as e:  # storage unavailable, say: the sender takes it as unreachable
        return {"error": e.code, "message": e.message}
    except Exception:
        log.exception("%s from a peer failed", type(item.message).__name__)
        return {"error": "internal_error", "message": "This site could not handle the message."}
    return to_wire(reply) if reply is not None else None


async def receive_batch(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await request.read()
    if not verify(settings.secret, request.method, request.path, request.headers, body,
                  settings.protocol.hmac_max_skew_s):
        return web.json_response({"error": "unauthorized", "message": "Bad or stale signature."},
                                 status=401)
    try:
        batch = parse_batch(body)
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        return web.json_response({"error": "invalid_message", "message": str(e)}, status=400)
    service = request.app[SERVICE]
    replies = await asyncio.gather(*(_answer(service, item) for item in batch))
    return web.json_response({"replies": replies})


def setup_internal_routes(app: web.Application) -> None:
    app.router.add_post(BATCH_PATH, receive_batch)
