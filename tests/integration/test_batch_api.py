"""The site-to-site batch endpoint of one real site (aiohttp app, real SQLite in tmp_path):
replies in order, prepares of uploads voted on by the files the site holds, and a malformed or
failing part refused on its own."""

import hashlib
import json
import struct
import uuid

import pytest

from domain.messages import (
    AddPhotos,
    Ballot,
    CreateEvent,
    Decision,
    PhotoMeta,
    Prepare,
    Query,
    VoteReport,
)
from tests.integration.conftest import SECRET
from web.peers.auth import signed_headers
from web.keys import SERVICE
from web.peers.transport import BATCH_PATH, Outgoing, encode_batch


async def post_batch(client, body: bytes, secret: str = SECRET):
    headers = signed_headers(secret, 9, "POST", BATCH_PATH, body)
    return await client.post(BATCH_PATH, data=body, headers={"Content-Type": "application/octet-stream", **headers})


def create(txn_id: str, event_id: str | None = None) -> Prepare:
    return Prepare(txn_id, event_id or str(uuid.uuid4()), 9, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"))


def upload(txn_id: str, photo: bytes, thumb: bytes, event_id: str | None = None) -> Prepare:
    meta = PhotoMeta(uuid.uuid4().hex, sha(photo), sha(thumb), "someone", 9)
    return Prepare(txn_id, event_id or str(uuid.uuid4()), 9, AddPhotos(0, (meta,)))


async def existing_event(client) -> str:
    """An event created at the site under test (prepared, then committed)."""
    prepare = create(f"9-{uuid.uuid4().hex}")
    decision = Decision(prepare.txn_id, prepare.event_id, True, None, prepare.payload)
    for message in (prepare, decision):
        assert (await post_batch(client, encode_batch([Outgoing(message, None)]))).status == 200
    return prepare.event_id


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw(header, attached: bytes = b"") -> bytes:
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack(">I", len(encoded)) + encoded + attached


def with_attachments(*refs) -> dict:
    message = {"type": "Query", "txn_id": "9-q", "event_id": str(uuid.uuid4()), "site": 9, "coordinator": 9}
    return {"messages": [{"message": message, "attachments": list(refs)}]}


async def test_every_message_of_a_batch_gets_its_own_reply_in_order(client):
    prepares = [create(f"9-t{i}") for i in range(5)]
    report = VoteReport(prepares[0].event_id, 1, Ballot("someone", "accept", 0.0, 9))
    query = Query("9-unknown", prepares[1].event_id, 9, 9)
    batch = [Outgoing(m, None) for m in (*prepares[:3], report, query, *prepares[3:])]
    resp = await post_batch(client, encode_batch(batch))
    assert resp.status == 200
    replies = (await resp.json())["replies"]
    assert [(r["type"], r.get("txn_id", r.get("user"))) for r in replies] == [
        ("Vote", "9-t0"), ("Vote", "9-t1"), ("Vote", "9-t2"), ("ReportAck", "someone"),
        ("Outcome", "9-unknown"), ("Vote", "9-t3"), ("Vote", "9-t4")]
    assert all(r["yes"] for r in replies if r and r["type"] == "Vote")


async def test_an_upload_whose_files_the_site_holds_gets_a_yes(client):
    photo, thumb = b"\xff\xd8 a photo" * 1000, b"\xff\xd8 its thumbnail"
    files = client.server.app[SERVICE].files
    files.write("photo", sha(photo), photo)
    files.write("thumb", sha(thumb), thumb)
    body = encode_batch([Outgoing(upload("9-up", photo, thumb, await existing_event(client)), None)])
    assert photo not in body  # metadata only
    resp = await post_batch(client, body)
    assert resp.status == 200
    reply = (await resp.json())["replies"][0]
    assert (reply["type"], reply["yes"]) == ("Vote", True)


async def test_an_upload_whose_files_the_site_lacks_is_refused_durably_and_a_copy_gets_the_same_no(client):
    photo, thumb = b"a photo never shipped", b"its thumbnail"
    service = client.server.app[SERVICE]
    service.files.write("thumb", sha(thumb), thumb)  # one of the two is here
    prepare = upload("9-missing", photo, thumb, await existing_event(client))
    body = encode_batch([Outgoing(prepare, None)])
    first = (await (await post_batch(client, body)).json())["replies"][0]
    assert (first["yes"], first["reason"]) == (False, "missing_photos")
    service.files.write("photo", sha(photo), photo)  # arrives late: the answer stands
    again = (await (await post_batch(client, body)).json())["replies"][0]
    assert again == first
    logged = [e.type for e in service.store.log(prepare.event_id) if e.record is not None]
    assert logged == ["Prepared", "Committed", "Refused"]


async def test_a_batch_signed_with_another_secret_or_altered_in_its_bytes_gets_401(client):
    body = encode_batch([Outgoing(create("9-x"), None)])
    assert (await post_batch(client, body, secret="not-the-secret")).status == 401
    headers = signed_headers(SECRET, 9, "POST", BATCH_PATH, body)
    altered = body[:-2] + b"X}"
    resp = await client.post(BATCH_PATH, data=altered, headers=headers)
    assert resp.status == 401


QUERY = {"type": "Query", "txn_id": "9-q", "event_id": str(uuid.uuid4()), "site": 9, "coordinator": 9}
MALFORMED = {
    "an empty body": b"",
    "a body shorter than the length": b"\x00\x00",
    "a length past the end": struct.pack(">I", 1000) + b"{}",
    "a header that is not JSON": raw(b"not json"),
    "a header that is not UTF-8": raw(b'{"messages": ["\xff"]}'),
    "a header that is not an object": raw([QUERY]),
    "messages that are not a list": raw({"messages": {"0": QUERY}}),
    "an entry without a message": raw({"messages": [{"attachments": []}]}),
    "an unknown message type": raw({"messages": [{"message": {"type": "Nope"}}]}),
    "a reply instead of a request": raw({"messages": [{"message": {"type": "Ack", "txn_id": "t",
                                                                    "event_id": "e", "site": 1}}]}),
    "unknown fields": raw({"messages": [{"message": {**QUERY, "extra": 1}}]}),
    "attachments that are not a list": raw({"messages": [{"message": QUERY, "attachments": {"photo:x": 0}}]}),
    "an attachment (photos travel as blobs)": raw(with_attachments(["photo", "ab", 0, 1]), b"x"),
    "bytes after the header": raw(with_attachments(), b"xy"),
    "an entry with another field": raw({"messages": [{"message": QUERY, "photos": []}]}),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_a_malformed_batch_gets_400_invalid_message_and_nothing_is_handled(client, case):
    resp = await post_batch(client, MALFORMED[case])
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_message"


async def test_a_well_formed_raw_batch_is_accepted(client):
    """The malformed cases above differ from this one only in what makes them malformed."""
    resp = await post_batch(client, raw(with_attachments()))
    assert resp.status == 200
    assert (await resp.json())["replies"][0]["type"] == "Outcome"
