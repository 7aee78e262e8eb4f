"""Small steps the end-to-end tests share: make an event, upload, read every site's view."""

from __future__ import annotations

import hashlib

from tests.e2e.cluster import wait_until
from tests.images import jpeg_bytes


def create_event(client, site: int = 0, title: str = "Picnic") -> str:
    status, body = client.post_json(site, "/api/events", {"title": title})
    assert status == 201, body
    return body["event_id"]


def photo(seed: int) -> tuple[str, bytes, str]:
    color = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    return (f"p{seed}.jpg", jpeg_bytes(320, 240, color=color), "image/jpeg")


def views(client, cluster, event_id: str, sites=None) -> dict[int, dict]:
    result = {}
    for k in sites if sites is not None else cluster.sites:
        status, body = client.get_json(k, f"/api/events/{event_id}")
        assert status == 200, (k, status, body)
        result[k] = body
    return result


def photo_shas(view: dict) -> list[str]:
    return [p["sha256"] for p in view["photos"]]


def wait_same_photos(client, cluster, event_id: str, count: int, timeout: float = 15) -> dict:
    """Wait until every site holds `count` photos, then return the views (asserting agreement)."""
    def settled():
        vs = views(client, cluster, event_id)
        return vs if all(v["montage_version"] == count for v in vs.values()) else None

    vs = wait_until(settled, timeout, message=f"every site at version {count}")
    orders = {k: photo_shas(v) for k, v in vs.items()}
    assert len({tuple(o) for o in orders.values()}) == 1, orders
    return vs


def montage_digests(client, cluster, event_id: str, version: int) -> dict[int, str]:
    digests = {}
    for k in cluster.sites:
        status, data = client.get_bytes(k, f"/events/{event_id}/montage.jpg?v={version}")
        assert status == 200, (k, status)
        digests[k] = hashlib.sha256(data).hexdigest()
    return digests


def nothing_in_doubt(client, cluster) -> bool:
    for k in cluster.sites:
        status, body = client.get_json(k, "/api/status")
        if status != 200 or body["in_doubt"]:
            return False
    return True
