"""Sites whose event stores live on a real PostgreSQL server, chosen in settings.toml by a URL."""

import subprocess
import sys

import pytest

from tests.e2e.cluster import PROJECT_ROOT, wait_until
from tests.e2e.helpers import create_event, photo, views, wait_same_photos
from tests.postgres import started_postgres

pytestmark = pytest.mark.e2e


@pytest.fixture
def postgres():
    server = started_postgres()
    yield server
    server.stop()


def test_three_sites_on_postgresql_replicate_publish_and_survive_a_crash(postgres, cluster_factory, client_factory):
    for site in range(3):
        postgres.create_database(f"photos_site{site}")
    cluster = cluster_factory(sites=3, settings_overrides={
        "storage": {"database": postgres.url("photos_site{site}")}})
    alice, bob = client_factory(cluster), client_factory(cluster)
    event_id = create_event(alice, 0, "On PostgreSQL")
    assert alice.upload(1, event_id, [photo(1)])[0] == 201
    assert bob.upload(2, event_id, [photo(2)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 2)

    cluster.kill(1)
    cluster.start(1)
    cluster.wait_ready(1)
    wait_same_photos(alice, cluster, event_id, 2)
    assert alice.post_json(1, f"/api/events/{event_id}/votes", {"montage_version": 2, "decision": "accept"})[0] == 200
    assert bob.post_json(2, f"/api/events/{event_id}/votes", {"montage_version": 2, "decision": "accept"})[0] == 200
    wait_until(lambda: all(v["state"] == "published" for v in views(alice, cluster, event_id).values()), 15,
               message="published on every site")
    result = subprocess.run(
        [sys.executable, "-m", "eventstore.audit", event_id, "--settings", str(cluster.settings_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
