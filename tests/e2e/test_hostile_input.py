"""Hostile input against real sites: property-based fuzzing of every JSON and multipart endpoint
and of the site-to-site API. Nothing a client sends may cause a 5xx, leave a transaction in
doubt, or change state when it is refused."""

import hashlib
import json
import os
import struct
import zlib
from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from domain.messages import Ballot, Query, RoundRequest, VoteReport
from domain.wire import to_wire
from tests.e2e.cluster import Client, wait_until
from tests.e2e.helpers import create_event, nothing_in_doubt, photo, views
from tests.images import bomb_png, jpeg_bytes
from web.peers.auth import signed_headers
from web.peers.transport import BATCH_PATH

pytestmark = pytest.mark.e2e

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=300),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)
vote_bodies = st.fixed_dictionaries(
    {}, optional={"montage_version": json_values | st.integers(-3, 5),
                  "decision": json_values | st.sampled_from(["accept", "reject", "ACCEPT", ""])})


@pytest.fixture(scope="module")
def site_pair(tmp_path_factory):
    """Two real sites shared by the fuzz tests of this module (each example is one request)."""
    from tests.e2e.cluster import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("hostile"), sites=2)
    cluster.start_all()
    yield cluster
    cluster.stop_all()


@pytest.fixture(scope="module")
def an_event(site_pair):
    owner = Client(site_pair.url)
    event_id = create_event(owner, 0, "Fuzzed")
    assert owner.upload(0, event_id, [photo(1)])[0] == 201
    return owner, event_id


def no_server_error(status: int, body) -> None:
    assert status < 500 or (status == 503 and body.get("error") in ("site_unreachable", "busy")), body


@FUZZ
@given(body=json_values | st.binary(max_size=200))
def test_any_body_to_create_an_event_gets_201_or_a_4xx(site_pair, body):
    client = Client(site_pair.url)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.request(0, "POST", "/api/events", raw, {"Content-Type": "application/json"})
    no_server_error(response.status, response.parsed() if response.status != 201 else {})
    if response.status == 201:
        assert isinstance(body, dict) and isinstance(body.get("title"), str)


@FUZZ
@given(body=vote_bodies | json_values)
def test_any_vote_body_is_refused_cleanly_unless_it_is_a_real_vote(site_pair, an_event, body):
    owner, event_id = an_event
    stranger = Client(site_pair.url)
    response = stranger.request(1, "POST", f"/api/events/{event_id}/votes", json.dumps(body).encode(),
                                {"Content-Type": "application/json"})
    assert response.status in (400, 403, 409), response.parsed()
    assert views(owner, site_pair, event_id)[0]["state"] == "open"


@FUZZ
@given(parts=st.lists(st.tuples(st.sampled_from(["photo", "Photo", "file", ""]), st.binary(max_size=2000),
                                st.sampled_from(["image/jpeg", "image/png", "text/html", ""])),
                      max_size=3),
       boundary_ok=st.booleans())
def test_any_multipart_upload_of_non_photos_is_refused_and_changes_nothing(site_pair, an_event, parts, boundary_ok):
    owner, event_id = an_event
    boundary = "fuzzboundary"
    chunks = []
    for name, data, content_type in parts:
        chunks += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x"\r\n'
                   f"Content-Type: {content_type}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode() if boundary_ok else b"--garbage")
    header = f"multipart/form-data; boundary={boundary}" if boundary_ok else "multipart/form-data"
    before = views(owner, site_pair, event_id)[0]["montage_version"]
    response = owner.request(1, "POST", f"/api/events/{event_id}/photos", b"".join(chunks),
                             {"Content-Type": header})
    assert 400 <= response.status < 500, response.body[:300]
    assert views(owner, site_pair, event_id)[1]["montage_version"] == before


@FUZZ
@given(path=st.text(alphabet="abcdef0123456789-./%?", min_size=1, max_size=60))
def test_any_event_path_gets_a_4xx_not_a_5xx(site_pair, path):
    client = Client(site_pair.url)
    for route in (f"/api/events/{path}", f"/events/{path}/montage.jpg", f"/public/{path}/montage.jpg",
                  f"/api/events/{path}/audit"):
        assert client.request(0, "GET", route).status < 500


@FUZZ
@given(cookie=st.text(max_size=80))
def test_any_cookie_gets_an_identity_and_never_someone_elses(site_pair, cookie):
    client = Client(site_pair.url)
    safe = "".join(ch for ch in cookie if 32 < ord(ch) < 127 and ch not in ';,"\\')
    response = client.request(0, "GET", "/api/me", headers={"Cookie": f"photo_session_user={safe}"})
    assert response.status == 200
    assert response.parsed()["user_id"] != safe.split(".")[0] or not safe


message_types = st.sampled_from(["Prepare", "Decision", "Query", "VoteReport", "RoundRequest", "Vote", "Nope"])
messages = st.builds(
    lambda kind, fields: {"type": kind, **fields}, message_types,
    st.dictionaries(st.sampled_from(["txn_id", "event_id", "coordinator", "payload", "commit", "site", "round",
                                     "ballot", "version", "reason"]), json_values, max_size=6))
attachment_refs = st.lists(
    st.lists(st.sampled_from(["photo", "thumb", "movie"]) | st.text(max_size=64) | st.integers(-5, 400) | json_values,
             min_size=3, max_size=5)
    | st.tuples(st.sampled_from(["photo", "thumb"]), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
                st.integers(-5, 400), st.integers(-5, 400)).map(list)
    | json_values,
    max_size=3) | json_values
entries = st.fixed_dictionaries({"message": messages | json_values}, optional={"attachments": attachment_refs})
headers = st.fixed_dictionaries({"messages": st.lists(entries | json_values, max_size=4)}) | json_values


@st.composite
def batch_bodies(draw) -> bytes:
    """A batch body (a length, a JSON header, raw bytes) with any of its parts garbled."""
    header = draw(st.binary(max_size=100) | headers.map(lambda h: json.dumps(h).encode()))
    length = draw(st.none() | st.integers(0, 2**32 - 1))
    body = struct.pack(">I", len(header) if length is None else length) + header + draw(st.binary(max_size=400))
    cut = draw(st.none() | st.integers(0, len(body)))
    return body if cut is None else body[:cut]


def post_signed(site_pair, body: bytes):
    headers = signed_headers(site_pair.settings.secret, 1, "POST", BATCH_PATH, body)
    return Client(site_pair.url).request(0, "POST", BATCH_PATH, body,
                                         {"Content-Type": "application/octet-stream", **headers})


@FUZZ
@given(body=batch_bodies() | st.binary(max_size=200))
def test_any_signed_site_to_site_batch_is_answered_without_a_5xx(site_pair, an_event, body):
    owner, event_id = an_event
    response = post_signed(site_pair, body)
    assert response.status in (200, 400), response.body[:300]
    if response.status == 400:
        assert response.parsed()["error"] == "invalid_message"
    assert views(owner, site_pair, event_id)[0]["state"] == "open"


# Requests that change nothing at a site (an event id nobody uses): the batch reaches its handlers.
harmless_messages = st.one_of(
    st.builds(Query, st.text(max_size=20), st.uuids().map(str), st.integers(-1, 4), st.integers(-1, 4)),
    st.builds(RoundRequest, st.uuids().map(str), st.integers(-1, 5)),
    st.builds(VoteReport, st.uuids().map(str), st.integers(-1, 3),
              st.builds(Ballot, st.text(max_size=10), st.sampled_from(["accept", "reject", "maybe"]),
                        st.floats(allow_nan=False, allow_infinity=False), st.integers(-1, 4))),
).map(to_wire)


@st.composite
def framed_batches(draw) -> tuple[list, bytes, bool]:
    """A correctly framed batch of real messages, one part of which may be garbled (a message,
    attachments, which no batch may carry any more, or bytes after the header); and whether
    none is (then the batch is well formed)."""
    count = draw(st.integers(1, 4))
    garbled = draw(st.none() | st.tuples(st.integers(0, count - 1),
                                         st.sampled_from(["message", "attachments", "bytes"])))
    entries = []
    for n in range(count):
        entry = {"message": draw(messages | json_values if garbled == (n, "message") else harmless_messages)}
        if garbled == (n, "attachments"):
            entry["attachments"] = draw(attachment_refs)
        elif draw(st.booleans()):
            entry["attachments"] = []  # the form of a message without photos: still accepted
        entries.append(entry)
    after = draw(st.binary(min_size=1, max_size=400)) if garbled and garbled[1] == "bytes" else b""
    return entries, after, garbled is None or (garbled[1] == "attachments"
                                               and entries[garbled[0]].get("attachments") == [])


@FUZZ
@given(batch=framed_batches())
def test_a_framed_batch_is_answered_message_by_message_and_refused_only_if_malformed(site_pair, an_event, batch):
    owner, event_id = an_event
    entries, after, well_formed = batch
    encoded = json.dumps({"messages": entries}).encode()
    response = post_signed(site_pair, struct.pack(">I", len(encoded)) + encoded + after)
    assert response.status in ((200,) if well_formed else (200, 400)), response.body[:300]
    if response.status == 200:
        assert len(response.parsed()["replies"]) == len(entries)
    if any(entry.get("attachments") not in (None, []) for entry in entries) or after:
        assert response.status == 400  # photos travel as blobs, never in a batch
    assert views(owner, site_pair, event_id)[0]["state"] == "open"


@FUZZ
@given(kind=st.sampled_from(["photo", "thumb", "movie", "..", "photo%2F.."]),
       name=st.text(alphabet="0123456789abcdefABC./", min_size=0, max_size=70),
       offset=st.integers(-3, 500), size=st.integers(-3, 2**40), body=st.binary(max_size=400))
def test_any_signed_blob_request_is_answered_without_a_5xx_and_keeps_only_verified_files(
        site_pair, kind, name, offset, size, body):
    from eventstore.photo_files import PhotoFiles

    path = f"/internal/v1/blobs/{kind}/{name}?offset={offset}&size={size}"
    headers = signed_headers(site_pair.settings.secret, 1, "PUT", path, b"")
    response = Client(site_pair.url).request(0, "PUT", path, body, headers)
    assert response.status in (201, 202, 400, 404, 405, 409, 413, 422), (response.status, response.body[:300])
    files = PhotoFiles(site_pair.settings.site_dir(0))
    for folder in files.folders():
        for kept in folder.glob("*.jpg"):
            assert hashlib.sha256(kept.read_bytes()).hexdigest() == kept.stem


def test_an_unsigned_or_badly_signed_site_to_site_batch_gets_401(site_pair):
    header = b'{"messages": [{"message": {"type": "Query"}}]}'
    body = struct.pack(">I", len(header)) + header
    client, binary = Client(site_pair.url), {"Content-Type": "application/octet-stream"}
    assert client.request(0, "POST", BATCH_PATH, body, binary).status == 401
    bad = signed_headers("wrong", 1, "POST", BATCH_PATH, body)
    assert client.request(0, "POST", BATCH_PATH, body, {**bad, **binary}).status == 401


def png_header_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


def polyglot_jpeg() -> bytes:
    """A valid JPEG with an HTML page and a zip directory appended after its end marker."""
    return jpeg_bytes(64, 64) + b"<html><script>alert(1)</script></html>" + b"PK\x05\x06" + b"\x00" * 18


def test_absurd_dimensions_bombs_and_polyglots_get_4xx_or_a_clean_photo(site_pair, an_event):
    owner, event_id = an_event
    before = views(owner, site_pair, event_id)[0]["montage_version"]
    for name, data, expected in (
        ("huge.png", png_header_claiming(100_000, 100_000), 422),
        ("bomb.png", bomb_png(12000, 12000), 422),
        ("zero.png", png_header_claiming(0, 0), 422),
        ("random.jpg", b"\xff\xd8\xff" + os.urandom(5000), 422),
    ):
        status, body = owner.upload(1, event_id, [(name, data, "image/png")])
        assert (status, body["error"]) == (expected, "invalid_image"), name
    assert views(owner, site_pair, event_id)[0]["montage_version"] == before
    status, body = owner.upload(0, event_id, [("poly.jpg", polyglot_jpeg(), "image/jpeg")])
    assert status == 201
    served = owner.get_bytes(1, f"/events/{event_id}/photos/{body['photos'][0]['photo_id']}.jpg")[1]
    assert b"<script>" not in served and b"PK\x05\x06" not in served  # re-encoded, not stored as sent


def exif_of(data: bytes):
    image = Image.open(BytesIO(data))
    return image.getexif(), image.info


def test_no_served_image_carries_gps_or_any_exif(site_pair):
    owner = Client(site_pair.url)
    event_id = create_event(owner, 0, "Holiday")
    status, body = owner.upload(1, event_id, [("gps.jpg", jpeg_bytes(400, 300, gps=True, orientation=6), "image/jpeg")])
    assert status == 201
    photo_id = body["photos"][0]["photo_id"]
    assert owner.post_json(0, f"/api/events/{event_id}/votes", {"montage_version": 1, "decision": "accept"})[0] == 200
    wait_until(lambda: all(v["state"] == "published" for v in views(owner, site_pair, event_id).values()), 15,
               message="published everywhere")
    assert wait_until(lambda: nothing_in_doubt(owner, site_pair), 10)
    anyone = Client(site_pair.url)
    for site in site_pair.sites:
        for path in (f"/events/{event_id}/photos/{photo_id}.jpg", f"/events/{event_id}/montage.jpg",
                     f"/public/{event_id}/montage.jpg"):
            status, data = anyone.get_bytes(site, path)
            assert status == 200, path
            exif, info = exif_of(data)
            assert len(exif) == 0 and "exif" not in info, path
            assert b"GPS" not in data
