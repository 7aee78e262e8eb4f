"""Persistent channels between sites (web.peers.channel, web.peers.channel_api), on loopback:
the upgrade is authenticated before anything is read, the dialer sends nothing to a site that
does not prove the secret, messages and replies travel in batches matched by id, a deadline
gives Unreachable and a fresh channel, a peer that goes away is dialled again when it is back,
a malformed or oversized frame closes the channel and not the site, and TLS carries it."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid

import aiohttp
import msgspec
import pytest
from aiohttp import web

from domain.messages import CreateEvent, Decision, Outcome, Prepare, Query, Unreachable
from domain.wire import to_wire
from tests.integration.conftest import SECRET
from tests.integration.test_tls import write_deployment
from web.peers.auth import NONCE_HEADER, signed_headers
from web.peers.channel import CHANNEL_PATH, MAX_FRAME_BYTES, proof_frame
from web.peers.channel_transport import ChannelTransport
from web.keys import SERVICE
from web.settings import ProtocolSettings, load_settings
from web.site import create_app
from web.tls import client_context, server_context

PEER = 1
EVENT = str(uuid.uuid4())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.01)


def query(txn_id: str) -> Query:
    return Query(txn_id, EVENT, 0, 0)


class FakePeer:
    """A peer's end of the channel: proves the secret (or a wrong one), records every frame,
    and answers each message with an Outcome, in reverse order, unless told to stay silent."""

    def __init__(self, secret: str = SECRET, silent: bool | int = False):
        """`silent`: True for every connection, or the number of the one that stays silent."""
        self.secret = secret
        self.silent = silent
        self.connections = 0
        self.frames: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(CHANNEL_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(proof_frame(self.secret, PEER, request.headers[NONCE_HEADER]))
        async for frame in ws:
            batch = msgspec.json.decode(frame.data)
            self.frames.append(batch)
            if not (self.silent is True or self.silent == self.connections):
                replies = [{"id": e["id"], "reply": to_wire(Outcome(e["message"]["txn_id"], EVENT, PEER, True))}
                           for e in reversed(batch["messages"])]
                await ws.send_bytes(msgspec.json.encode({"replies": replies}))
        return ws

    def messages(self) -> list[dict]:
        return [entry for frame in self.frames for entry in frame["messages"]]


def dialer_settings(tmp_path, peer_port: int, timeout_s: float = 5.0, tls=None, scheme="http"):
    urls = (f"{scheme}://127.0.0.1:{free_port()}", f"{scheme}://127.0.0.1:{peer_port}")
    overrides = {"tls": tls} if tls else {}
    return load_settings(None, site_count=2, urls=urls, data_dir=tmp_path / "dialer", secret=SECRET,
                         cookie_secret="cookie-secret",
                         protocol=ProtocolSettings(request_timeout_s=timeout_s), **overrides)


@pytest.fixture
async def dialers():
    """ChannelTransports of site 0, closed at the end."""
    made = []

    async def make(settings) -> ChannelTransport:
        transport = ChannelTransport(settings, 0, asyncio.get_running_loop(), None)
        connector = aiohttp.TCPConnector(ssl=client_context(settings, 0) or True)
        transport.session = aiohttp.ClientSession(connector=connector)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()
        await transport.session.close()


def collect(transport, site: int, messages) -> dict[str, asyncio.Future]:
    """Send each message; its reply lands in the future under its txn id."""
    loop = asyncio.get_running_loop()
    answers = {}
    for message in messages:
        answers[message.txn_id] = future = loop.create_future()
        transport.send(site, message, lambda reply, f=future: f.done() or f.set_result(reply))
    return answers


async def fake_peer(aiohttp_server, peer: FakePeer, port: int | None = None):
    return await aiohttp_server(peer.app(), port=port or free_port())


# Authentication of the upgrade, both ways

async def test_an_unsigned_upgrade_is_refused_401_before_it_is_upgraded(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(CHANNEL_PATH)
    assert refused.value.status == 401
    assert refused.value.headers["X-Refusal-Reason"] == "routing header"


async def test_an_upgrade_signed_with_another_secret_is_refused_and_says_why(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(CHANNEL_PATH, headers=signed_headers("another", 9, "GET", CHANNEL_PATH))
    assert (refused.value.status, refused.value.headers["X-Refusal-Reason"]) == (401, "signature")


async def test_a_replayed_upgrade_is_refused(client):
    headers = signed_headers(SECRET, 9, "GET", CHANNEL_PATH)
    ws = await client.ws_connect(CHANNEL_PATH, headers=headers)
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(CHANNEL_PATH, headers=headers)
    assert (refused.value.status, refused.value.headers["X-Refusal-Reason"]) == (401, "replayed")


async def test_a_signed_upgrade_is_answered_first_with_a_proof_over_our_nonce(client):
    headers = signed_headers(SECRET, 9, "GET", CHANNEL_PATH)
    async with client.ws_connect(CHANNEL_PATH, headers=headers) as ws:
        first = msgspec.json.decode((await ws.receive()).data)
    assert first == msgspec.json.decode(proof_frame(SECRET, 0, headers[NONCE_HEADER]))


async def test_the_dialer_sends_nothing_to_a_site_that_does_not_prove_the_secret(
        aiohttp_server, tmp_path, dialers, caplog):
    impostor = FakePeer(secret="not-ours")
    server = await fake_peer(aiohttp_server, impostor)
    transport = await dialers(dialer_settings(tmp_path, server.port))
    caplog.set_level(logging.INFO, logger="web.peers.transport")
    answers = collect(transport, PEER, [query("t-1")])
    assert isinstance(await asyncio.wait_for(answers["t-1"], 10), Unreachable)
    assert impostor.connections >= 1 and impostor.frames == []
    assert any(r.levelno == logging.WARNING and "prove" in r.getMessage() for r in caplog.records)


async def test_a_dialer_whose_signature_is_refused_learns_the_reason(aiohttp_server, tmp_path, dialers, caplog):
    site_settings = load_settings(None, site_count=2, data_dir=tmp_path / "site", secret="another-secret",
                                  cookie_secret="cookie-secret")
    server = await aiohttp_server(create_app(site_settings, PEER), port=free_port())
    transport = await dialers(dialer_settings(tmp_path, server.port))
    caplog.set_level(logging.INFO, logger="web.peers.transport")
    answers = collect(transport, PEER, [query("t-1")])
    assert isinstance(await asyncio.wait_for(answers["t-1"], 10), Unreachable)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "web.peers.transport"]
    assert len(warnings) == 1 and "(signature)" in warnings[0]


# Messages and replies

async def test_replies_reach_their_own_senders_whatever_order_they_come_in(aiohttp_server, tmp_path, dialers):
    peer = FakePeer()
    server = await fake_peer(aiohttp_server, peer)
    transport = await dialers(dialer_settings(tmp_path, server.port))
    answers = collect(transport, PEER, [query(f"t-{n}") for n in range(5)])
    for n in range(5):
        reply = await asyncio.wait_for(answers[f"t-{n}"], 10)
        assert (reply.txn_id, reply.site, reply.commit) == (f"t-{n}", PEER, True)
    sent = peer.messages()
    assert [e["message"]["txn_id"] for e in sent] == [f"t-{n}" for n in range(5)]  # in order
    assert [e["id"] for e in sent] == sorted({e["id"] for e in sent})  # distinct ids, rising


async def test_many_messages_sent_at_once_leave_in_few_frames(aiohttp_server, tmp_path, dialers):
    peer = FakePeer()
    server = await fake_peer(aiohttp_server, peer)
    transport = await dialers(dialer_settings(tmp_path, server.port))
    await asyncio.wait_for(collect(transport, PEER, [query("warm-up")])["warm-up"], 10)
    answers = collect(transport, PEER, [query(f"t-{n}") for n in range(200)])
    replies = await asyncio.wait_for(asyncio.gather(*answers.values()), 10)
    assert [r.txn_id for r in replies] == [f"t-{n}" for n in range(200)]
    assert len(peer.frames) <= 3  # the warm-up, then the 200 together (at most one split)


async def test_a_message_answered_by_a_real_site_comes_back_with_its_vote(aiohttp_server, tmp_path, dialers):
    site_settings = load_settings(None, site_count=2, data_dir=tmp_path / "site", secret=SECRET,
                                  cookie_secret="cookie-secret")
    server = await aiohttp_server(create_app(site_settings, PEER), port=free_port())
    transport = await dialers(dialer_settings(tmp_path, server.port))
    prepare = Prepare("0-real", str(uuid.uuid4()), 0, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"))
    vote = await asyncio.wait_for(collect(transport, PEER, [prepare])["0-real"], 10)
    assert (type(vote).__name__, vote.txn_id, vote.yes) == ("Vote", "0-real", True)
    assert await transport.post(PEER, query("0-asked")) is not None
    # A prepare and a decision take the hot path (SiteService.hand_over): no task on the site's
    # loop; the decision is stored and acknowledged all the same.
    decision = Decision("0-real", prepare.event_id, True, None, prepare.payload)
    ack = await asyncio.wait_for(collect(transport, PEER, [decision])["0-real"], 10)
    assert (type(ack).__name__, ack.txn_id, ack.site) == ("Ack", "0-real", PEER)
    store = server.app[SERVICE].store
    assert [e.type for e in store.log(prepare.event_id) if e.role == "participant"][-2:] == ["Prepared", "Committed"]


# Deadlines, breaks and reconnection

async def test_a_message_never_answered_is_unreachable_at_its_deadline_and_the_channel_is_dialled_again(
        aiohttp_server, tmp_path, dialers):
    peer = FakePeer(silent=True)
    server = await fake_peer(aiohttp_server, peer)
    transport = await dialers(dialer_settings(tmp_path, server.port, timeout_s=0.5))
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await asyncio.wait_for(collect(transport, PEER, [query("t-1")])["t-1"], 10)
    assert isinstance(reply, Unreachable) and 0.45 <= loop.time() - started < 3
    await until(lambda: peer.connections == 2)  # the silent channel was suspect: a new one


async def test_what_is_sent_after_a_silent_channel_was_dropped_goes_on_the_next_one(
        aiohttp_server, tmp_path, dialers):
    peer = FakePeer(silent=1)
    server = await fake_peer(aiohttp_server, peer)
    transport = await dialers(dialer_settings(tmp_path, server.port, timeout_s=1.5))
    assert isinstance(await asyncio.wait_for(collect(transport, PEER, [query("t-1")])["t-1"], 10), Unreachable)
    answers = collect(transport, PEER, [query("t-2"), query("t-3")])  # maybe before the redial
    replies = await asyncio.wait_for(asyncio.gather(*answers.values()), 10)
    assert [(r.txn_id, r.commit) for r in replies] == [("t-2", True), ("t-3", True)]
    assert peer.connections == 2


async def test_a_peer_that_goes_away_fails_messages_at_once_and_is_dialled_again_when_back(aiohttp_server, tmp_path, dialers):
    port = free_port()
    server = await fake_peer(aiohttp_server, FakePeer(), port)
    transport = await dialers(dialer_settings(tmp_path, port, timeout_s=5.0))
    assert (await asyncio.wait_for(collect(transport, PEER, [query("before")])["before"], 10)).commit
    await server.close()
    loop = asyncio.get_running_loop()
    started = loop.time()
    gone = await asyncio.wait_for(collect(transport, PEER, [query("gone")])["gone"], 10)
    assert isinstance(gone, Unreachable)
    assert loop.time() - started < 4  # the failed dial told it, well before its deadline
    back = FakePeer()
    await fake_peer(aiohttp_server, back, port)
    await until(lambda: back.connections == 1)  # dialled again with no message waiting
    assert (await asyncio.wait_for(collect(transport, PEER, [query("after")])["after"], 10)).commit
    assert back.connections == 1



async def test_a_site_dials_its_peers_at_start_before_any_message(aiohttp_server, tmp_path, dialers):
    peer = FakePeer()
    server = await fake_peer(aiohttp_server, peer)
    transport = await dialers(dialer_settings(tmp_path, server.port))
    transport.open_channels()
    await until(lambda: peer.connections == 1 and transport.channels[PEER].ws is not None)
    assert peer.frames == []  # open, proven, nothing sent
    assert (await asyncio.wait_for(collect(transport, PEER, [query("first")])["first"], 10)).commit
    assert peer.connections == 1  # the first message took the channel opened at start


async def test_a_message_cuts_the_back_off_short_when_its_peer_is_back(aiohttp_server, tmp_path, dialers, monkeypatch):
    monkeypatch.setattr("web.peers.channel.backoff", lambda attempt: 60.0)  # a dial a minute
    port = free_port()
    transport = await dialers(dialer_settings(tmp_path, port, timeout_s=5.0))
    transport.open_channels()  # the peer is not up yet: the dial fails, the next is a minute away
    await until(lambda: transport.channels[PEER].dial_error is not None)
    back = FakePeer()
    await fake_peer(aiohttp_server, back, port)
    answer = await asyncio.wait_for(collect(transport, PEER, [query("now")])["now"], 10)
    assert isinstance(answer, Outcome) and answer.commit  # dialled for it, not a minute later
    assert back.connections == 1

# What a peer may send

async def test_a_frame_past_the_cap_closes_that_channel_and_the_site_serves_the_next(client):
    async with client.ws_connect(CHANNEL_PATH, headers=signed_headers(SECRET, 9, "GET", CHANNEL_PATH),
                                 max_msg_size=0) as ws:
        await ws.receive()  # the proof
        try:
            await ws.send_bytes(b" " * (MAX_FRAME_BYTES + 1))
        except ConnectionError:  # the site closed the channel before the frame's end
            pass
        closing = await asyncio.wait_for(ws.receive(), 10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert ws.close_code in (aiohttp.WSCloseCode.MESSAGE_TOO_BIG, aiohttp.WSCloseCode.ABNORMAL_CLOSURE)
    await answered_by(client)


@pytest.mark.parametrize("frame", [b"not json", b"[]", b'{"messages": {}}', b'{"messages": [{"message": {}}]}',
                                   b'{"messages": [{"id": "1", "message": {}}]}'])
async def test_a_frame_that_is_not_a_batch_closes_the_channel_and_nothing_else(client, frame):
    async with client.ws_connect(CHANNEL_PATH, headers=signed_headers(SECRET, 9, "GET", CHANNEL_PATH)) as ws:
        await ws.receive()
        await ws.send_bytes(frame)
        closing = await ws.receive()
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.INVALID_TEXT
    await answered_by(client)


async def test_a_message_that_is_not_a_request_gets_an_error_under_its_id_and_its_neighbour_an_answer(client):
    good = {"id": 2, "message": to_wire(query("9-q"))}
    bad = {"id": 1, "message": {"type": "Nope"}}
    async with client.ws_connect(CHANNEL_PATH, headers=signed_headers(SECRET, 9, "GET", CHANNEL_PATH)) as ws:
        await ws.receive()
        await ws.send_bytes(msgspec.json.encode({"messages": [bad, good]}))
        replies = {}
        while len(replies) < 2:
            for entry in msgspec.json.decode((await ws.receive()).data)["replies"]:
                replies[entry["id"]] = entry["reply"]
    assert replies[1]["error"] == "invalid_message"
    assert replies[2]["type"] == "Outcome" and replies[2]["txn_id"] == "9-q"


async def test_a_message_whose_channel_closes_right_after_it_is_still_handled(client):
    """A frame and the dialer's close often arrive together (the dialer gave up on a paused
    site): the message is handled to its end, as a request is when its client has gone."""
    event_id = str(uuid.uuid4())
    prepare = Prepare("9-late", event_id, 9, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"))
    async with client.ws_connect(CHANNEL_PATH, headers=signed_headers(SECRET, 9, "GET", CHANNEL_PATH)) as ws:
        await ws.receive()
        await ws.send_bytes(msgspec.json.encode({"messages": [{"id": 1, "message": to_wire(prepare)}]}))
        await ws.close()
    store = client.app[SERVICE].store

    def prepared() -> bool:
        return any(entry.type == "Prepared" for entry in store.log(event_id))

    await until(prepared)
    assert [entry.record.txn_id for entry in store.log(event_id) if entry.type == "Prepared"] == ["9-late"]


async def answered_by(client) -> None:
    """The site still answers on a new channel."""
    async with client.ws_connect(CHANNEL_PATH, headers=signed_headers(SECRET, 9, "GET", CHANNEL_PATH)) as ws:
        await ws.receive()
        await ws.send_bytes(msgspec.json.encode({"messages": [{"id": 7, "message": to_wire(query("9-ok"))}]}))
        [entry] = msgspec.json.decode((await asyncio.wait_for(ws.receive(), 10)).data)["replies"]
    assert entry["id"] == 7 and entry["reply"]["type"] == "Outcome"


# TLS

async def test_the_channel_runs_over_tls_checked_against_the_deployment_ca(aiohttp_server, tmp_path, dialers):
    tls = write_deployment(tmp_path / "deploy", "127.0.0.1")
    for suffix in ("crt", "key"):  # the peer, site 1, serves the same certificate for 127.0.0.1
        (tmp_path / "deploy" / f"site-1.{suffix}").write_bytes((tmp_path / "deploy" / f"site-0.{suffix}").read_bytes())
    port = free_port()
    settings = dialer_settings(tmp_path, port, tls=tls, scheme="https")
    await aiohttp_server(create_app(settings, PEER), port=port, ssl=server_context(settings, PEER))
    transport = await dialers(settings)
    reply = await asyncio.wait_for(collect(transport, PEER, [query("0-tls")])["0-tls"], 10)
    assert (type(reply).__name__, reply.txn_id) == ("Outcome", "0-tls")
    assert transport.channels[PEER].frames_sent == 1


# The setting

def test_a_peer_channel_that_does_not_exist_is_refused_at_start_up_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match="protocol.peer_channel = 'pigeon'"):
        load_settings(None, data_dir=tmp_path, protocol=ProtocolSettings(peer_channel="pigeon"))
    assert load_settings(None, data_dir=tmp_path, protocol=ProtocolSettings(peer_channel="http"))


async def test_with_peer_channel_http_a_site_sends_its_messages_as_signed_posts(aiohttp_server, tmp_path):
    port = free_port()
    urls = (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{port}")
    settings = [load_settings(None, site_count=2, urls=urls, data_dir=tmp_path / f"site-{k}", secret=SECRET,
                              cookie_secret="cookie-secret", protocol=ProtocolSettings(peer_channel="http"))
                for k in (0, 1)]
    await aiohttp_server(create_app(settings[1], PEER), port=port)
    sender = create_app(settings[0], 0)
    await aiohttp_server(sender, port=int(urls[0].rsplit(":", 1)[1]))
    transport = sender[SERVICE].transport
    assert not isinstance(transport, ChannelTransport)
    reply = await asyncio.wait_for(collect(transport, PEER, [query("0-http")])["0-http"], 10)
    assert (type(reply).__name__, reply.txn_id) == ("Outcome", "0-http")
