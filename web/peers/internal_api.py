"""The site-to-site API under /internal/: every request authenticated from its headers before a
byte of its body is read (web.peers.auth), each route's body read as a stream with a cap of its
own, then checked against the signed digest.

The batch endpoint takes protocol messages (the format is described in web.peers.transport) and
answers each of them. Photos do not travel here: they reach a site before the Prepare that names
them (web.peers.blob_api), and the site votes no on an upload whose files it does not hold. The
messages of a batch are independent: they are handled concurrently, and one that fails gets an
error entry of its own, which touches neither its neighbours nor the request as a whole. The
ping answers a signed request with a proof that this site holds the secret too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from aiohttp import web

from actors.role_actor import Failed
from domain.errors import PhotoSessionError
from domain.messages import (
    CountRelay,
    Decision,
    Prepare,
    Query,
    RoundRequest,
    VoteReport,
    VoteRequest,
)
from domain.wire import from_wire, to_wire
from eventstore.repeated_log import RepeatedLog
from web.keys import SERVICE, SETTINGS, SITE
from web.peers.auth import NONCE_HEADER, Refusal, Verifier, proof
from web.peers.transport import (
    BATCH_PATH,
    HEADER_LENGTH,
    PING_PATH,
    REFUSAL_LOG_INTERVAL_S,
    decode_json,
    encode_json,
)

log = logging.getLogger(__name__)
REQUESTS = (Prepare, Decision, Query, VoteReport, RoundRequest, CountRelay, VoteRequest)
INTERNAL = "/internal/"
VERIFIER = web.AppKey("peer_verifier", Verifier)
BATCH_CAP = web.AppKey("batch_body_cap", int)  # bytes; a test may lower it
CHUNK = 256 * 1024

# What a batch of messages may take: its JSON, with room (photos travel as blobs, not here).
MAX_MESSAGES_BODY = 4 * 1024 * 1024


def refused(refusal: Refusal) -> web.Response:
    """The refusal in JSON, and in headers too: a WebSocket client reads no body from a refused
    upgrade (web.peers.channel)."""
    status = 503 if refusal.reason == "busy" else 401
    headers = {"X-Refusal-Reason": refusal.reason, "X-Refusal-Message": refusal.message}
    if refusal.skew_s is not None:
        headers["X-Refusal-Skew"] = f"{refusal.skew_s:.3f}"
    return web.json_response(refusal.as_json(), status=status, headers=headers)


def authenticator(verifier: Verifier):
    """Nothing under /internal/ reaches a handler, or has its body read, unless signed. A
    refusal is logged once per cause and interval: a flood of bad requests is one line."""
    refusals = RepeatedLog(log, REFUSAL_LOG_INTERVAL_S)

    @web.middleware
    async def authenticate(request: web.Request, handler):
        if request.path.startswith(INTERNAL):
            refusal = verifier.check(request.method, request.path_qs, request.headers)
            if refusal is not None:
                refusals.warning(refusal.reason, "refused %s %s from %s: %s", request.method,
                                 request.path, request.remote, refusal.message)
                return refused(refusal)
        return await handler(request)

    return authenticate


class BodyRefused(Exception):
    def __init__(self, response: web.Response):
        self.response = response


async def read_body(request: web.Request, cap: int) -> bytes:
    """The body, read as a stream: BodyRefused (413) past `cap` bytes, (401) when it is not
    the body that was signed."""
    too_large = BodyRefused(web.json_response(
        {"error": "too_large", "message": f"A request to {request.path} may carry at most {cap} bytes."},
        status=413))
    if request.content_length is not None and request.content_length > cap:
        raise too_large
    body, digest = bytearray(), hashlib.sha256()
    async for chunk in request.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > cap:
            raise too_large
        digest.update(chunk)
    if not request.app[VERIFIER].digest_matches(request.headers, digest.hexdigest()):
        raise BodyRefused(refused(Refusal("digest", "The body is not the one that was signed.")))
    return bytes(body)


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
    header = decode_json(body[HEADER_LENGTH.size:start])
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
    return parse_message(entry["message"])


def parse_message(wire):
    """A request message from its wire form; ValueError (or KeyError, TypeError) otherwise."""
    message = from_wire(wire)
    if not isinstance(message, REQUESTS):
        raise ValueError("not a request message")
    return message


async def answer(service, message):
    """One message's entry in the answer: its reply on the wire (or null), or why it failed."""
    try:
        reply = await service.dispatch(message)
    except PhotoSessionError as e:  # storage unavailable, say: the sender takes it as unreachable
        return {"error": e.code, "message": e.message}
    except Exception:
        log.exception("%s from a peer failed", type(message).__name__)
        return {"error": "internal_error", "message": "This site could not handle the message."}
    return to_wire(reply) if reply is not None else None


def wire_answer(reply):
    """The entry `answer` gives for an actor's reply to a message handed over to it
    (SiteService.hand_over): a Failed one as `SiteService.ask` would have raised it."""
    if isinstance(reply, Failed):
        error = reply.as_error()
        return {"error": error.code, "message": error.message}
    return to_wire(reply) if reply is not None else None


async def receive_batch(request: web.Request) -> web.Response:
    try:
        body = await read_body(request, request.app[BATCH_CAP])
    except BodyRefused as e:
        return e.response
    try:
        batch = parse_batch(body)
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        return web.json_response({"error": "invalid_message", "message": str(e)}, status=400)
    service = request.app[SERVICE]
    replies = await asyncio.gather(*(answer(service, message) for message in batch))
    return web.Response(body=encode_json({"replies": replies}), content_type="application/json")


async def ping(request: web.Request) -> web.Response:
    """Reached only when the asker's signature was good; the proof shows ours is the same."""
    site, settings = request.app[SITE], request.app[SETTINGS]
    return web.json_response({"site": site,
                              "proof": proof(settings.secret, site, request.headers[NONCE_HEADER])})


def setup_internal_routes(app: web.Application) -> None:
    """The routes, their verifier and the middleware that authenticates them (innermost, so
    that no other middleware has read a body before it)."""
    settings = app[SETTINGS]
    app[VERIFIER] = Verifier(settings.secret, settings.protocol.hmac_max_skew_s)
    app[BATCH_CAP] = MAX_MESSAGES_BODY
    app.middlewares.append(authenticator(app[VERIFIER]))
    app.router.add_post(BATCH_PATH, receive_batch)
    app.router.add_get(PING_PATH, ping)
