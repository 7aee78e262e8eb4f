"""GET /metrics of one real site in-process: the figures after a create and an upload."""

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.images import jpeg_bytes


async def scrape(client) -> dict:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(await resp.text())}


def value(families, family, sample, **labels) -> float | None:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


async def test_metrics_count_a_create_and_an_upload_by_kind_outcome_and_route(client):
    resp = await client.post("/api/events", json={"title": "Picnic"})
    assert resp.status == 201
    event_id = (await resp.json())["event_id"]
    form = aiohttp.FormData()
    form.add_field("photo", jpeg_bytes(320, 240), filename="p.jpg", content_type="image/jpeg")
    resp = await client.post(f"/api/events/{event_id}/photos", data=form)
    assert resp.status == 201
    assert (await client.get(f"/api/events/{event_id}")).status == 200

    families = await scrape(client)

    committed = {"outcome": "committed", "reason": "none"}
    assert value(families, "photos_transactions", "photos_transactions_total", kind="create", **committed) == 1
    assert value(families, "photos_transactions", "photos_transactions_total", kind="upload", **committed) == 1
    for kind in ("create", "upload"):
        decision = "photos_transaction_decision_seconds"
        assert value(families, decision, decision + "_count", kind=kind) == 1
        assert 0 < value(families, decision, decision + "_sum", kind=kind) < 30

    latency = "photos_http_request_duration_seconds"
    routes = {(s.labels["method"], s.labels["route"], s.labels["status"])
              for s in families[latency].samples if s.name == latency + "_count"}
    assert ("POST", "/api/events", "201") in routes
    assert ("POST", "/api/events/{event_id}/photos", "201") in routes
    assert ("GET", "/api/events/{event_id}", "200") in routes
    assert not any(event_id in route for _, route, _ in routes)  # templates, never raw paths

    assert value(families, "photos_transactions_in_doubt", "photos_transactions_in_doubt") == 0
    # One site: it acknowledged itself. The client hears before that record is stored
    # (actors.coordinator.before_store), so the gauge reaches 0 a moment after the 201.
    unacknowledged = "photos_decisions_unacknowledged"
    deadline = asyncio.get_running_loop().time() + 10
    while value(families, unacknowledged, unacknowledged) != 0:
        assert asyncio.get_running_loop().time() < deadline, "a decision never acknowledged"
        await asyncio.sleep(0.02)
        families = await scrape(client)
    assert families["photos_peer_reachable"].samples == []  # one site, no peers
    assert value(families, "photos_storage_errors", "photos_storage_errors_total") == 0


async def test_a_request_for_no_route_is_one_label_whatever_its_path(client):
    assert (await client.get("/no/such/page-1")).status == 404
    assert (await client.get("/no/such/page-2")).status == 404
    families = await scrape(client)
    latency = "photos_http_request_duration_seconds"
    unmatched = [s for s in families[latency].samples
                 if s.name == latency + "_count" and s.labels["status"] == "404"]
    assert [(s.labels["route"], s.value) for s in unmatched] == [("unmatched", 2)]
