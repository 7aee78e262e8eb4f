"""What operators see of real site processes: GET /metrics on every site, and JSON logs."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import wait_until
from tests.e2e.helpers import create_event, photo, wait_same_photos

pytestmark = pytest.mark.e2e


def scrape(client, site: int) -> dict:
    response = client.request(site, "GET", "/metrics")
    assert response.status == 200, response.body
    return {f.name: f for f in text_string_to_metric_families(response.body.decode())}


def samples(families, family: str, sample: str | None = None) -> list:
    return [s for s in families[family].samples if s.name == (sample or family)]


def transactions(families, **labels) -> float:
    return sum(s.value for s in samples(families, "photos_transactions", "photos_transactions_total")
               if all(s.labels[k] == v for k, v in labels.items()))


def unacknowledged(client, site: int) -> float:
    return samples(scrape(client, site), "photos_decisions_unacknowledged")[0].value


def peers(families) -> dict[str, float]:
    return {s.labels["peer"]: s.value for s in samples(families, "photos_peer_reachable")}


@pytest.fixture
def json_logging_cluster(cluster_factory):
    return cluster_factory(sites=3, settings_overrides={"logging": {"format": "json"}})


def test_metrics_show_transactions_latency_and_peers_and_a_killed_peer_goes_to_zero(
        json_logging_cluster, client_factory):
    cluster = json_logging_cluster
    alice = client_factory(cluster)
    event_id = create_event(alice, 0)
    status, body = alice.upload(0, event_id, [photo(1)])
    assert status == 201, body
    wait_same_photos(alice, cluster, event_id, 1)

    home = scrape(alice, 0)
    assert transactions(home, kind="create", outcome="committed", reason="none") == 1
    assert transactions(home, kind="upload", outcome="committed", reason="none") == 1
    assert transactions(scrape(alice, 1), outcome="committed") == 0  # counted where coordinated
    decision = "photos_transaction_decision_seconds"
    for kind in ("create", "upload"):
        (count,) = [s for s in samples(home, decision, decision + "_count") if s.labels["kind"] == kind]
        assert count.value == 1
    latency = "photos_http_request_duration_seconds"
    routes = {(s.labels["method"], s.labels["route"], s.labels["status"])
              for s in samples(home, latency, latency + "_count")}
    assert {("POST", "/api/events", "201"), ("POST", "/api/events/{event_id}/photos", "201"),
            ("GET", "/api/events/{event_id}", "200")} <= routes
    assert samples(home, "photos_transactions_in_doubt")[0].value == 0
    wait_until(lambda: unacknowledged(alice, 0) == 0, 10, message="every decision acknowledged")
    assert samples(home, "photos_storage_errors", "photos_storage_errors_total")[0].value == 0
    participant = scrape(alice, 1)  # a create's Created (carrying its Prepared), Committed; an upload's two
    records = samples(participant, "photos_store_records", "photos_store_records_total")[0].value
    commits = samples(participant, "photos_store_commits", "photos_store_commits_total")[0].value
    assert records == 4 and 2 <= commits <= 4  # stored events: a creation carries the log's first record
    gc_passes = {s.labels["generation"]: s.value for s in samples(home, "photos_gc_passes", "photos_gc_passes_total")}
    assert set(gc_passes) == {"0", "1", "2"}  # counted by the site (tests/unit/test_metrics.py)
    assert samples(home, "photos_gc_frozen_objects")[0].value > 10000  # start-up's, frozen once ready
    assert peers(home) == {"1": 1, "2": 1}

    cluster.kill(2)
    assert peers(scrape(alice, 0)) == {"1": 1, "2": 0}
    status, _ = alice.post_json(0, "/api/events", {"title": "Nobody at site 2"})
    assert status == 503
    after = scrape(alice, 0)
    assert transactions(after, kind="create", outcome="aborted", reason="unreachable") == 1
    assert transactions(after, kind="create", outcome="committed") == 1
    # the abort is resent to site 2 until it acknowledges: it waits while site 2 is down
    assert unacknowledged(alice, 0) == 1

    for k in (0, 1):  # the sites still running: every line they logged is one JSON object
        lines = [line for line in cluster.log_path(k).read_text().splitlines()
                 if not line.startswith("=== starting site")]  # written by the test harness
        entries = [json.loads(line) for line in lines]
        assert entries and all(e["site"] == k and e["level"] and e["logger"] for e in entries)
        assert any("ready" in e["message"] for e in entries)
