"""Hostile input against real sites: property-based fuzzing of every JSON and multipart endpoint
and of the site-to-site API. Nothing a client sends may cause a 5xx, leave a transaction in
doubt, or change state when it is refused."""

import json
import os
import struct
import zlib
from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.e2e.cluster import Client, wait_until
from tests.e2e.helpers import create_event, nothing_in_doubt, photo, views
from tests.images import bomb_png, jpeg_bytes
from web.hmac_auth import signed_headers
from web.peer_client import MESSAGE_PATH

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


@FUZZ
@given(kind=message_types, fields=st.dictionaries(
    st.sampled_from(["txn_id", "event_id", "coordinator", "payload", "commit", "site", "round", "ballot",
                     "version", "reason"]), json_values, max_size=6),
       attachments=json_values)
def test_any_signed_site_to_site_message_is_answered_without_a_5xx(site_pair, an_event, kind, fields, attachments):
    owner, event_id = an_event
    body = json.dumps({"message": {"type": kind, **fields}, "attachments": attachments}).encode()
    headers = signed_headers(site_pair.settings.secret, 1, "POST", MESSAGE_PATH, body)
    response = Client(site_pair.url).request(0, "POST", MESSAGE_PATH, body,
                                             {"Content-Type": "application/json", **headers})
    assert response.status in (200, 400), response.body[:300]
    assert views(owner, site_pair, event_id)[0]["state"] == "open"


def test_an_unsigned_or_badly_signed_site_to_site_message_gets_401(site_pair):
    body = b'{"message": {"type": "Query"}}'
    client = Client(site_pair.url)
    assert client.request(0, "POST", MESSAGE_PATH, body, {"Content-Type": "application/json"}).status == 401
    bad = signed_headers("wrong", 1, "POST", MESSAGE_PATH, body)
    assert client.request(0, "POST", MESSAGE_PATH, body, {**bad, "Content-Type": "application/json"}).status == 401


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
