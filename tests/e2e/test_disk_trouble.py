"""A site whose data directory becomes full or read-only refuses writes with a clear error,
keeps what it had, never corrupts its log, and works again once the disk is back."""

import os
import subprocess
import sys

import pytest

from tests.e2e.cluster import PROJECT_ROOT, wait_until
from tests.e2e.helpers import create_event, nothing_in_doubt, photo, views, wait_same_photos

pytestmark = pytest.mark.e2e


def mount_small_tmpfs(path, megabytes: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here: {result.stderr.strip()}; these tests need root "
                    "and mount(8) (CI and scripts/test.sh run as root)")


def remount(path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def cluster_with_a_disk(cluster_factory, request, folder: str):
    """Three sites; site 2's `folder` (its whole data directory, or a part) is a small tmpfs."""
    cluster = cluster_factory(sites=3, start=False)
    disk = cluster.data_dir / "site-2" / folder
    mount_small_tmpfs(disk, 16)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(disk)], capture_output=True))
    cluster.start_all()
    return cluster, disk


@pytest.fixture
def small_disk_cluster(cluster_factory, request):
    return cluster_with_a_disk(cluster_factory, request, "")


@pytest.fixture
def photo_disk_cluster(cluster_factory, request):
    # A file system with files open for writing (the event store) cannot be remounted
    # read-only; the photo folder can, as a disk that turns read-only under a running site.
    return cluster_with_a_disk(cluster_factory, request, "photos")


def audit_agrees(cluster, event_id) -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "eventstore.audit", event_id, "--settings", str(cluster.settings_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    return result.returncode == 0


def test_a_full_disk_refuses_uploads_with_503_and_keeps_everything_it_had(small_disk_cluster, client_factory):
    cluster, disk = small_disk_cluster
    alice = client_factory(cluster)
    event_id = create_event(alice, 0)
    assert alice.upload(2, event_id, [photo(1)])[0] == 201
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
        except OSError:
            pass  # the disk is full

    for site in (2, 0):  # the full site coordinating, and taking part as a participant
        status, body = alice.upload(site, event_id, [photo(2 + site)])
        assert status == 503 and body["error"] in ("storage_unavailable", "site_unreachable"), body
        assert body["message"]
    assert all(v["montage_version"] == 1 for v in views(alice, cluster, event_id).values())
    assert alice.get_bytes(2, f"/events/{event_id}/montage.jpg")[0] == 200  # reads still work
    status, body = alice.post_json(1, "/api/events", {"title": "x" * 200})  # the event store is full too
    assert status in (201, 503), body

    filler.unlink()
    wait_until(lambda: nothing_in_doubt(alice, cluster), 15, message="nothing in doubt")
    assert alice.upload(2, event_id, [photo(9)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 2)
    assert audit_agrees(cluster, event_id)


def test_a_read_only_disk_refuses_writes_and_the_site_recovers_when_it_is_writable_again(
        photo_disk_cluster, client_factory):
    cluster, disk = photo_disk_cluster
    alice = client_factory(cluster)
    event_id = create_event(alice, 1)
    assert alice.upload(1, event_id, [photo(1)])[0] == 201
    remount(disk, "ro")
    try:
        for site in (2, 0):
            status, body = alice.upload(site, event_id, [photo(2 + site)])
            assert status == 503 and body["error"] in ("storage_unavailable", "site_unreachable"), body
        assert all(v["montage_version"] == 1 for v in views(alice, cluster, event_id).values())
        assert alice.get_json(2, "/api/status")[1]["storage"] == {"ok": False, "problem": "the disk is read-only"}
    finally:
        remount(disk, "rw")
    wait_until(lambda: alice.get_json(2, "/api/status")[1]["storage"] == {"ok": True}, 15,
               message="the site sees its disk writable again")
    wait_until(lambda: nothing_in_doubt(alice, cluster), 15, message="nothing in doubt")
    assert alice.upload(2, event_id, [photo(3)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 2)
    cluster.kill(2)  # and its log replays cleanly after a crash
    cluster.start(2)
    cluster.wait_ready(2)
    wait_same_photos(alice, cluster, event_id, 2)
    assert audit_agrees(cluster, event_id)
    assert os.path.ismount(disk)
