"""Bad uploads and bad requests get the API's 4xx codes and change nothing on any site."""

import os

import pytest

from tests.e2e.helpers import create_event, photo, views
from tests.images import bomb_png, text_file, truncated_jpeg

pytestmark = pytest.mark.e2e


def photo_files_on_disk(cluster) -> int:
    return sum(len(os.listdir(d)) for k in cluster.sites
               if (d := cluster.data_dir / f"site-{k}" / "photos").exists())


def test_bad_uploads_get_415_422_422_413_and_change_nothing(cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice)
    assert alice.upload(0, event_id, [photo(1)])[0] == 201
    files_before = photo_files_on_disk(cluster)

    cases = [
        (("notes.txt", text_file(), "text/plain"), 415, "unsupported_media_type"),
        (("cut.jpg", truncated_jpeg(), "image/jpeg"), 422, "invalid_image"),
        (("bomb.png", bomb_png(12000, 12000), "image/png"), 422, "invalid_image"),
        (("huge.jpg", b"\xff\xd8" + os.urandom(30 * 1024 * 1024), "image/jpeg"), 413, "too_large"),
    ]
    for file, status, code in cases:
        got, body = alice.upload(1, event_id, [file])
        assert (got, body["error"]) == (status, code), file[0]
        assert body["message"]

    assert all(v["montage_version"] == 1 for v in views(alice, cluster, event_id).values())
    assert photo_files_on_disk(cluster) == files_before


def test_one_bad_file_among_good_ones_refuses_the_whole_upload(cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice)
    status, body = alice.upload(2, event_id, [photo(1), ("cut.jpg", truncated_jpeg(), "image/jpeg")])
    assert (status, body["error"]) == (422, "invalid_image")
    assert all(v["montage_version"] == 0 for v in views(alice, cluster, event_id).values())


def test_the_contributor_limit_refuses_one_submitter_too_many_with_403(cluster_factory, client_factory):
    cluster = cluster_factory(sites=3, settings_overrides={"event": {"max_contributors": 2}})
    users = [client_factory(cluster) for _ in range(3)]
    event_id = create_event(users[0])
    assert users[0].upload(0, event_id, [photo(1)])[0] == 201
    assert users[1].upload(1, event_id, [photo(2)])[0] == 201
    status, body = users[2].upload(2, event_id, [photo(3)])
    assert (status, body["error"]) == (403, "contributor_limit")
    assert users[0].upload(2, event_id, [photo(4)])[0] == 201  # existing submitters still may


@pytest.mark.parametrize("title", ["", "   ", "x" * 201, None, 42])
def test_a_title_that_is_empty_too_long_or_not_text_gets_400_invalid_title(cluster, client_factory, title):
    status, body = client_factory().post_json(0, "/api/events", {"title": title})
    assert (status, body["error"]) == (400, "invalid_title")


def test_unknown_events_and_malformed_bodies_get_clear_4xx(cluster, client_factory):
    alice = client_factory()
    assert alice.get_json(0, "/api/events/not-an-id")[1]["error"] == "unknown_event"
    assert alice.get_json(0, "/api/events/6c1b0a52-7c55-4a57-9d3b-1f2d6b3c0a11")[0] == 404
    response = alice.request(0, "POST", "/api/events", b"{not json", {"Content-Type": "application/json"})
    assert response.status == 400 and response.parsed()["error"] == "invalid_request"
    event_id = create_event(alice)
    response = alice.request(1, "POST", f"/api/events/{event_id}/photos", b"plain", {"Content-Type": "text/plain"})
    assert response.status == 400 and response.parsed()["error"] == "invalid_request"


def test_a_cross_site_form_post_with_a_foreign_origin_is_refused(cluster, client_factory):
    alice = client_factory()
    response = alice.request(0, "POST", "/api/events", b'{"title": "x"}',
                             {"Content-Type": "application/json", "Origin": "https://evil.example"})
    assert response.status == 403
