"""One real site (aiohttp app, real SQLite in tmp_path) driven in-process: auth and identity."""

import time
import uuid

from domain.messages import CreateEvent, Prepare
from tests.integration.conftest import SECRET
from web.peers.auth import signed_headers
from web.identity import COOKIE_NAME, cookie_value
from web.keys import SERVICE
from web.peers.transport import BATCH_PATH, Outgoing, encode_batch


def prepare_body(event_id: str, txn_id: str = "9-t1") -> bytes:
    message = Prepare(txn_id, event_id, 9, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"))
    return encode_batch([Outgoing(message, None)])


async def post_internal(client, body: bytes, headers: dict):
    return await client.post(BATCH_PATH, data=body, headers={"Content-Type": "application/octet-stream", **headers})


async def test_a_site_to_site_message_without_a_signature_gets_401(client):
    resp = await post_internal(client, prepare_body(str(uuid.uuid4())), {})
    assert resp.status == 401


async def test_a_site_to_site_message_with_a_wrong_signature_gets_401(client):
    headers = signed_headers("not-the-secret", 1, "POST", BATCH_PATH, prepare_body(str(uuid.uuid4())))
    resp = await post_internal(client, prepare_body(str(uuid.uuid4())), headers)
    assert resp.status == 401


async def test_a_signed_body_that_was_tampered_with_gets_401(client):
    event_id = str(uuid.uuid4())
    headers = signed_headers(SECRET, 1, "POST", BATCH_PATH, prepare_body(event_id))
    resp = await post_internal(client, prepare_body(event_id, txn_id="9-other"), headers)
    assert resp.status == 401


async def test_a_stale_site_to_site_message_gets_401(client):
    body = prepare_body(str(uuid.uuid4()))
    headers = signed_headers(SECRET, 1, "POST", BATCH_PATH, body, now=time.time() - 3600)
    resp = await post_internal(client, body, headers)
    assert resp.status == 401
    answer = await resp.json()
    assert answer["reason"] == "skew" and 3590 < answer["skew_s"] < 3610


async def test_a_replayed_prepare_gets_the_same_answer_and_stores_nothing_more(client):
    event_id = str(uuid.uuid4())
    body = prepare_body(event_id)
    answers = []
    for _ in range(3):
        resp = await post_internal(client, body, signed_headers(SECRET, 9, "POST", BATCH_PATH, body))
        assert resp.status == 200
        answers.append(await resp.json())
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["replies"][0]["yes"] is True
    store = client.server.app[SERVICE].store
    assert [e.type for e in store.log(event_id) if e.record is not None] == ["Prepared"]


async def test_a_first_request_gets_an_identity_cookie_that_every_later_request_keeps(client):
    first = await client.get("/api/me")
    user = (await first.json())["user_id"]
    assert COOKIE_NAME in first.cookies and "httponly" in first.headers["Set-Cookie"].lower()
    second = await client.get("/api/me")
    assert (await second.json())["user_id"] == user


async def test_a_tampered_or_foreign_cookie_gets_a_fresh_identity(client):
    forged = cookie_value("someone-elses-key", uuid.uuid4().hex)
    for value in (forged, "garbage", f"{uuid.uuid4().hex}.{'0' * 32}"):
        client.session.cookie_jar.clear()
        resp = await client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={value}"})
        assert resp.status == 200
        user = (await resp.json())["user_id"]
        assert user != value.split(".")[0]
        assert COOKIE_NAME in resp.cookies  # a new, properly signed identity


async def test_the_status_shows_healthy_storage_and_a_commit_that_could_not_be_applied(client):
    import asyncio

    from domain.messages import Decision

    body = await (await client.get("/api/status")).json()
    assert body["storage"] == {"ok": True} and body["alarms"] == []
    event_id = str(uuid.uuid4())
    batch = encode_batch([Outgoing(Decision("9-t7", event_id, True), None)])
    for _ in range(2):  # resent: still no acknowledgement
        resp = await post_internal(client, batch, signed_headers(SECRET, 9, "POST", BATCH_PATH, batch))
        assert (await resp.json())["replies"] == [None]
    deadline = time.monotonic() + 5
    while not (body := await (await client.get("/api/status")).json())["alarms"]:
        assert time.monotonic() < deadline, "no alarm in the status"
        await asyncio.sleep(0.02)
    assert body["alarms"] == [{"event_id": event_id, "txn_id": "9-t7",
                               "problem": "told to commit a transaction this site never prepared"}]
