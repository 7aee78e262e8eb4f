"""Create and upload by two-phase commit across four real site processes."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.helpers import create_event, montage_digests, photo, views, wait_same_photos

pytestmark = pytest.mark.e2e


def test_an_event_created_on_site_0_is_readable_on_all_four_sites_when_the_201_arrives(
        cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice, 0, "Birthday")
    for k, view in views(alice, cluster, event_id).items():
        assert view["title"] == "Birthday" and view["home_site"] == 0 and view["site"] == k
        assert view["state"] == "open" and view["montage_version"] == 0


def test_twelve_photos_uploaded_concurrently_at_three_sites_end_in_the_same_order_everywhere(
        cluster, client_factory):
    users = [client_factory() for _ in range(3)]
    event_id = create_event(users[0])

    def upload_four(i):
        return [users[i].upload(i, event_id, [photo(i * 10 + n)])[0] for n in range(4)]

    with ThreadPoolExecutor(3) as pool:
        statuses = [s for result in pool.map(upload_four, range(3)) for s in result]
    assert statuses == [201] * 12

    vs = wait_same_photos(users[0], cluster, event_id, 12)
    assert [p["version"] for p in vs[0]["photos"]] == list(range(1, 13))
    assert len(set(vs[0]["submitters"])) == 3
    digests = montage_digests(users[0], cluster, event_id, 12)
    assert len(set(digests.values())) == 1, digests


def test_an_upload_answer_names_the_committed_versions(cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice)
    status, body = alice.upload(2, event_id, [photo(1), photo(2)])
    assert status == 201, body
    assert body["montage_version"] == 2
    assert [p["version"] for p in body["photos"]] == [1, 2]
    assert all(p["site"] == 2 for p in body["photos"])


def test_an_uploads_photo_files_are_at_every_site_verified_before_its_201(cluster, client_factory):
    import hashlib

    from eventstore.photo_files import PhotoFiles

    alice = client_factory()
    event_id = create_event(alice)
    status, body = alice.upload(3, event_id, [photo(7), photo(8)])
    assert status == 201, body
    view = views(alice, cluster, event_id, sites=[3])[3]
    for k in cluster.sites:
        files = PhotoFiles(cluster.settings.site_dir(k))
        for p in view["photos"]:
            data = files.read("photo", p["sha256"])  # there when the 201 came, under its sha256
            assert hashlib.sha256(data).hexdigest() == p["sha256"]
        assert not any((cluster.settings.site_dir(k) / "photos").glob("*.part"))


def test_only_submitters_see_photos_and_montage_before_publication(cluster, client_factory):
    alice, bob = client_factory(), client_factory()
    event_id = create_event(alice)
    status, body = alice.upload(1, event_id, [photo(3)])
    assert status == 201
    photo_id = body["photos"][0]["photo_id"]
    assert alice.get_bytes(1, f"/events/{event_id}/montage.jpg")[0] == 200
    assert bob.get_bytes(1, f"/events/{event_id}/montage.jpg")[0] == 403
    assert bob.get_bytes(1, f"/events/{event_id}/photos/{photo_id}.jpg")[0] == 403
    status, view = bob.get_json(0, f"/api/events/{event_id}")
    assert view["photos"] == [] and view["photo_count"] == 1 and not view["you"]["is_submitter"]


def test_every_site_to_site_message_delivered_twice_gives_the_same_state_as_once(
        cluster_factory, client_factory):
    cluster = cluster_factory(settings_overrides={"protocol": {"duplicate_delivery": True}})
    alice = client_factory(cluster)
    event_id = create_event(alice, 1)
    for n in range(3):
        assert alice.upload(n % 4, event_id, [photo(n)])[0] == 201
    vs = wait_same_photos(alice, cluster, event_id, 3)
    assert len(vs[0]["photos"]) == 3
    status, audit = alice.get_json(0, f"/api/events/{event_id}/audit")
    committed = [e for e in audit["entries"] if e["type"] == "Committed"]
    assert len(committed) == 4  # one creation and three uploads, each applied once


def test_the_audit_replays_every_sites_log_and_finds_them_in_agreement(cluster, client_factory):
    import subprocess
    import sys

    from tests.e2e.cluster import PROJECT_ROOT

    alice = client_factory()
    event_id = create_event(alice, 3)
    assert alice.upload(1, event_id, [photo(1)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 1)
    status, audit = alice.get_json(2, f"/api/events/{event_id}/audit")
    assert status == 200 and audit["site"] == 2
    types = [e["type"] for e in audit["entries"] if e["role"] == "participant"]
    assert types[-4:] == ["Prepared", "Committed", "Prepared", "Committed"]
    result = subprocess.run(
        [sys.executable, "-m", "eventstore.audit", event_id, "--settings", str(cluster.settings_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: the sites agree" in result.stdout


def test_a_live_stream_sends_the_event_now_and_again_when_a_photo_is_committed(cluster, client_factory):
    import json
    import threading
    import urllib.request

    alice = client_factory()
    event_id = create_event(alice, 0)
    assert alice.upload(0, event_id, [photo(1)])[0] == 201
    seen = []
    cookie = "; ".join(f"{c.name}={c.value}" for c in alice.cookies)
    request = urllib.request.Request(cluster.url(2) + f"/api/events/{event_id}/stream",
                                     headers={"Cookie": cookie})

    def read():
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response:
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:]))
                    if len(seen) == 2:
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    from tests.e2e.cluster import wait_until
    wait_until(lambda: seen, 10, message="the first state on the stream")
    assert seen[0]["montage_version"] == 1 and seen[0]["you"]["is_submitter"]
    assert alice.upload(1, event_id, [photo(2)])[0] == 201
    reader.join(10)
    assert [s["montage_version"] for s in seen] == [1, 2]
