"""The published keepsake across three real site processes: full resolution, photos in their
own aspect ratio (little background), byte-identical on every site, with its screen rendition."""

from __future__ import annotations

import hashlib
from io import BytesIO

import pytest
from PIL import Image

from eventstore.collage import BACKGROUND
from tests.e2e.cluster import wait_until
from tests.e2e.helpers import create_event, views, wait_same_photos
from tests.images import photo_jpeg, share_close_to

pytestmark = pytest.mark.e2e

LONG_PERIOD = {"event": {"voting_period_s": 30}}
# (site, photo sizes) per submitter: 7 photos, landscape and portrait mixed
UPLOADS = [(0, [(2000, 1500), (1500, 2000), (2000, 1500)]),
           (1, [(2000, 1500), (1500, 2000)]),
           (2, [(2000, 1500), (1500, 2000)])]


def published_everywhere(client, cluster, event_id: str):
    vs = views(client, cluster, event_id)
    return vs if all(v["state"] == "published" for v in vs.values()) else None


def test_a_published_seven_photo_keepsake_is_large_tight_and_identical_on_every_site(
        cluster_factory, client_factory):
    cluster = cluster_factory(sites=3, settings_overrides=LONG_PERIOD)
    users = [client_factory(cluster) for _ in UPLOADS]
    event_id = create_event(users[0], 0, title="Reunion")
    seed = 0
    for user, (site, sizes) in zip(users, UPLOADS):
        for size in sizes:
            seed += 1
            status, body = user.upload(site, event_id, [(f"p{seed}.jpg", photo_jpeg(*size, seed=seed), "image/jpeg")])
            assert status == 201, body
    wait_same_photos(users[0], cluster, event_id, 7)
    for user, (site, _) in zip(users, UPLOADS):
        status, body = user.post_json(site, f"/api/events/{event_id}/votes",
                                      {"montage_version": 7, "decision": "accept"})
        assert status == 200, body
    wait_until(lambda: published_everywhere(users[0], cluster, event_id), 20, message="published everywhere")

    stranger = client_factory(cluster)
    full, screen = {}, {}
    for k in cluster.sites:
        status, full[k] = stranger.get_bytes(k, f"/public/{event_id}/montage.jpg")
        assert status == 200, (k, status)
        status, screen[k] = stranger.get_bytes(k, f"/public/{event_id}/montage.jpg?size=screen")
        assert status == 200, (k, status)
    assert len({hashlib.sha256(data).hexdigest() for data in full.values()}) == 1
    assert len({hashlib.sha256(data).hexdigest() for data in screen.values()}) == 1

    keepsake = Image.open(BytesIO(full[0]))
    keepsake.load()
    assert 3000 <= max(keepsake.size) <= 8192, keepsake.size
    assert share_close_to(keepsake, BACKGROUND) < 0.08
    assert "exif" not in keepsake.info
    assert max(Image.open(BytesIO(screen[0])).size) <= 1600

    status, page = stranger.get_bytes(1, f"/public/{event_id}")
    assert status == 200
    assert f"/public/{event_id}/montage.jpg?size=screen".encode() in page
    assert f"/public/{event_id}/montage.jpg {keepsake.width}w".encode() in page
    assert b'download="reunion-keepsake.jpg"' in page
