"""The site-to-site API: one authenticated endpoint that takes a batch of protocol messages
(the format is described in web.peer_client) and answers each of them.

Photos do not travel here: they reach a site before the Prepare that names them (web.blob_api),
and the site votes no on an upload whose files it does not hold. The messages of a batch are
independent: they are handled concurrently, and one that fails gets an error entry of its own,
which touches neither its neighbours nor the request as a whole.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from domain.errors import PhotoSessionError
from domain.messages import Decision, Prepare, Query, RoundRequest, VoteReport, from_wire, to_wire
from web.hmac_auth import verify
from web.keys import SERVICE, SETTINGS
from web.peer_client import BATCH_PATH, HEADER_LENGTH

log = logging.getLogger(__name__)
REQUESTS = (Prepare, Decision, Query, VoteReport, RoundRequest)


def parse_batch(body: bytes) -> list:
    """The messages of a batch body; ValueError (or KeyError, TypeError) if it is malformed."""
    if len(body) < HEADER_LENGTH.size:
        raise ValueError("the body is shorter than its header's length")
    (length,) = HEADER_LENGTH.unpack_from(body)
    start = HEADER_LENGTH.size + length
    if start > len(body):
        raise ValueError("the header's length runs past the body")
    if start != len(body):
        raise ValueError("bytes after the header: photos travel as blobs, not in a batch")
    header = json.loads(body[HEADER_LENGTH.size:start])
    if not isinstance(header, dict) or not isinstance(header.get("messages"), list):
        raise ValueError("the header must be an object with a list of messages")
    return [_parse_entry(entry) for entry in header["messages"]]


def _parse_entry(entry):
    """A message; an entry may still say it has no attachments (`"attachments": []`), the form
    senders used when photos rode in prepares: any attachment is refused."""
    if not isinstance(entry, dict) or set(entry) - {"attachments"} != {"message"}:
        raise ValueError("a message entry must be an object holding a message")
    if entry.get("attachments", []) != []:
        raise ValueError("attachments are refused: photos travel as blobs, not in a batch")
    message = from_wire(entry["message"])
    if not isinstance(message, REQUESTS):
        raise ValueError("not a request message")
    return message


async def _answer(service, message):
    """One message's entry in the answer: its reply on the wire (or null), or why it failed."""
    try:
        reply = await service.dispatch(message)
    except PhotoSessionError as e:  # storage unavailable, say: the sender takes it as unreachable
        return {"error": e.code, "message": e.message}
    except Exception:
        log.exception("%s from a peer failed", type(message).__name__)
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
    replies = await asyncio.gather(*(_answer(service, message) for message in batch))
    return web.json_response({"replies": replies})


def setup_internal_routes(app: web.Application) -> None:
    app.router.add_post(BATCH_PATH, receive_batch)
