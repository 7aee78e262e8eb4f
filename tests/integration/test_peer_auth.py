"""Site-to-site authentication on one real site (aiohttp app, real SQLite in tmp_path): decided
from the headers before the body is read, every refusal with its reason, bodies capped."""

import asyncio
import json
import uuid

import pytest

from domain.messages import CreateEvent, Prepare
from tests.integration.conftest import SECRET
from web.peers.auth import NONCE_HEADER, SITE_HEADER, signed_headers
from web.peers.internal_api import BATCH_CAP
from web.peers.transport import BATCH_PATH, PING_PATH, Outgoing, encode_batch
from web.settings import load_settings
from web.site import create_app

BINARY = {"Content-Type": "application/octet-stream"}


def prepare_body() -> bytes:
    message = Prepare("9-t1", str(uuid.uuid4()), 9, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"))
    return encode_batch([Outgoing(message, None)])


async def post(client, body, headers):
    return await client.post(BATCH_PATH, data=body, headers={**BINARY, **headers})


async def headers_only_request(client, head: str) -> tuple[str, bytes]:
    """Send a request's head over a raw socket and nothing else; the status line and the
    answer's body, as the site sends them without waiting for ours."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        status = (await asyncio.wait_for(reader.readline(), 10)).decode()
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await asyncio.wait_for(reader.readexactly(length), 10)
    finally:
        writer.close()


async def test_an_unsigned_200_mb_post_is_refused_with_401_before_its_body_is_sent(client):
    head = (f"POST {BATCH_PATH} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n")
    status, body = await headers_only_request(client, head)
    assert status.startswith("HTTP/1.1 401")
    assert json.loads(body)["reason"] == "routing header"


async def test_a_badly_signed_200_mb_post_is_refused_with_401_before_its_body_is_sent(client):
    signed = signed_headers("not-the-secret", 1, "POST", BATCH_PATH, b"whatever comes")
    head = (f"POST {BATCH_PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {200 * 1024 * 1024}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n")
    status, body = await headers_only_request(client, head)
    assert status.startswith("HTTP/1.1 401")
    assert json.loads(body)["reason"] == "signature"


async def test_a_signed_request_sent_again_is_refused_as_replayed(client):
    body = prepare_body()
    headers = signed_headers(SECRET, 1, "POST", BATCH_PATH, body)
    assert (await post(client, body, headers)).status == 200
    again = await post(client, body, headers)
    assert again.status == 401 and (await again.json())["reason"] == "replayed"


async def test_a_changed_site_header_breaks_the_signature(client):
    body = prepare_body()
    headers = {**signed_headers(SECRET, 1, "POST", BATCH_PATH, body), SITE_HEADER: "2"}
    resp = await post(client, body, headers)
    assert resp.status == 401 and (await resp.json())["reason"] == "signature"


async def test_a_request_without_a_nonce_is_refused_for_its_routing_headers(client):
    body = prepare_body()
    headers = signed_headers(SECRET, 1, "POST", BATCH_PATH, body)
    del headers[NONCE_HEADER]
    resp = await post(client, body, headers)
    assert resp.status == 401 and (await resp.json())["reason"] == "routing header"


async def test_a_body_other_than_the_signed_one_is_refused_for_its_digest(client):
    headers = signed_headers(SECRET, 1, "POST", BATCH_PATH, prepare_body())
    resp = await post(client, prepare_body(), headers)
    assert resp.status == 401 and (await resp.json())["reason"] == "digest"


async def test_an_unsigned_ping_is_refused_and_a_signed_one_is_answered_with_a_proof(client):
    assert (await client.get(PING_PATH)).status == 401
    resp = await client.get(PING_PATH, headers=signed_headers(SECRET, 1, "GET", PING_PATH))
    assert resp.status == 200 and len((await resp.json())["proof"]) == 64


@pytest.fixture
async def small_cap_client(aiohttp_client, tmp_path):
    settings = load_settings(None, site_count=1, data_dir=tmp_path, secret=SECRET,
                             cookie_secret="cookie-secret")
    app = create_app(settings, 0)
    app[BATCH_CAP] = 64 * 1024
    return await aiohttp_client(app)


async def test_a_signed_batch_over_the_cap_is_refused_with_413_by_its_length(small_cap_client):
    body = b"x" * (64 * 1024 + 1)
    resp = await post(small_cap_client, body, signed_headers(SECRET, 1, "POST", BATCH_PATH, body))
    assert resp.status == 413


async def test_a_signed_chunked_batch_over_the_cap_is_refused_with_413_as_it_streams(small_cap_client):
    body = b"x" * (256 * 1024)

    async def chunks():
        for start in range(0, len(body), 16 * 1024):
            yield body[start:start + 16 * 1024]

    resp = await post(small_cap_client, chunks(), signed_headers(SECRET, 1, "POST", BATCH_PATH, body))
    assert resp.status == 413


async def test_a_signed_batch_under_the_cap_is_answered(small_cap_client):
    body = prepare_body()
    resp = await post(small_cap_client, body, signed_headers(SECRET, 1, "POST", BATCH_PATH, body))
    assert resp.status == 200

