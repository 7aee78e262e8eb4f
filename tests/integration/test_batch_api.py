"""The site-to-site batch endpoint of one real site (aiohttp app, real SQLite in tmp_path):
replies in order, photos as raw bytes, and a malformed or failing part refused on its own."""

import hashlib
import json
import struct
import uuid

import pytest

from domain.messages import AddPhotos, Ballot, CreateEvent, PhotoMeta, Prepare, Query, VoteReport
from tests.integration.conftest import SECRET
from web.peers.auth import signed_headers
from web.keys import SERVICE
from web.peers.transport import BATCH_PATH, Outgoing, encode_batch


async def post_batch(client, body: bytes, secret: str = SECRET):
    headers = signed_headers(secret, 9, "POST", BATCH_PATH, body)
    return await client.post(BATCH_PATH, data=body, headers={"Content-Type": "application/octet-stream", **headers})


def create(txn_id: str, event_id: str | None = None) -> Prepare:
    return Prepare(txn_id, event_id or str(uuid.uuid4()), 9, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"))


def upload(txn_id: str, photo: bytes, thumb: bytes) -> Prepare:
    meta = PhotoMeta(uuid.uuid4().hex, sha(photo), sha(thumb), "someone", 9)
    return Prepare(txn_id, str(uuid.uuid4()), 9, AddPhotos(0, (meta,)))


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
    assert [r and (r["type"], r["txn_id"]) for r in replies] == [
        ("Vote", "9-t0"), ("Vote", "9-t1"), ("Vote", "9-t2"), None, ("Outcome", "9-unknown"),
        ("Vote", "9-t3"), ("Vote", "9-t4")]
    assert all(r["yes"] for r in replies if r and r["type"] == "Vote")


async def test_photos_travel_as_raw_bytes_and_are_on_disk_before_the_prepare_is_answered(client):
    photo, thumb = b"\xff\xd8 a photo" * 1000, b"\xff\xd8 its thumbnail"
    prepare = upload("9-up", photo, thumb)
    body = encode_batch([Outgoing(prepare, None, (("photo", sha(photo), photo), ("thumb", sha(thumb), thumb)))])
    assert photo in body  # not base64
    resp = await post_batch(client, body)
    assert resp.status == 200
    assert (await resp.json())["replies"][0]["type"] == "Vote"
    files = client.server.app[SERVICE].files
    assert files.read("photo", sha(photo)) == photo and files.read("thumb", sha(thumb)) == thumb


async def test_a_photo_that_does_not_match_its_checksum_fails_only_its_own_message(client):
    photo, other = b"the photo", b"not the photo"
    bad = upload("9-bad", photo, photo)
    batch = [Outgoing(create("9-before"), None),
             Outgoing(bad, None, (("photo", sha(photo), other),)),
             Outgoing(create("9-after"), None)]
    resp = await post_batch(client, encode_batch(batch))
    assert resp.status == 200
    before, refused, after = (await resp.json())["replies"]
    assert refused["error"] == "invalid_message" and "type" not in refused
    assert (before["txn_id"], before["yes"], after["txn_id"], after["yes"]) == ("9-before", True, "9-after", True)
    service = client.server.app[SERVICE]
    assert not service.files.has("photo", sha(photo))
    assert list(service.store.log(bad.event_id)) == []  # the participant never saw it


async def test_a_batch_signed_with_another_secret_or_altered_in_its_bytes_gets_401(client):
    photo = b"photo bytes"
    body = encode_batch([Outgoing(upload("9-x", photo, photo), None, (("photo", sha(photo), photo),))])
    assert (await post_batch(client, body, secret="not-the-secret")).status == 401
    headers = signed_headers(SECRET, 9, "POST", BATCH_PATH, body)
    altered = body[:-1] + b"X"  # one byte of the photo
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
    "an attachment of another kind": raw(with_attachments(["movie", "ab", 0, 1]), b"x"),
    "an attachment of three fields": raw(with_attachments(["photo", "ab", 0]), b"x"),
    "an offset past the end": raw(with_attachments(["photo", "ab", 2, 1]), b"xy"),
    "a length past the end": raw(with_attachments(["photo", "ab", 0, 3]), b"xy"),
    "a negative offset": raw(with_attachments(["photo", "ab", -1, 1]), b"xy"),
    "a negative length": raw(with_attachments(["photo", "ab", 1, -1]), b"xy"),
    "an offset that is not an integer": raw(with_attachments(["photo", "ab", 0.5, 1]), b"xy"),
    "a length that is a boolean": raw(with_attachments(["photo", "ab", 0, True]), b"xy"),
    "a sha256 that is not a string": raw(with_attachments(["photo", 7, 0, 1]), b"xy"),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_a_malformed_batch_gets_400_invalid_message_and_nothing_is_handled(client, case):
    resp = await post_batch(client, MALFORMED[case])
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_message"


async def test_a_well_formed_raw_batch_is_accepted(client):
    """The malformed cases above differ from this one only in what makes them malformed."""
    resp = await post_batch(client, raw(with_attachments(), b"xy"))
    assert resp.status == 200
    assert (await resp.json())["replies"][0]["type"] == "Outcome"
