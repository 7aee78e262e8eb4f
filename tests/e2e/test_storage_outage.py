"""The PostgreSQL server under one site stops: that site answers 503 storage_unavailable, in
words, wherever it needs its store (its peers answer 503 site_unreachable for changes that need
it), says so in its status, logs the cause a bounded number of times, and works again by itself
once the server is back."""

import random

import pytest

from tests.e2e.cluster import _port_is_free, wait_until
from tests.e2e.helpers import create_event, photo
from tests.postgres import PostgresServer

pytestmark = pytest.mark.e2e

SITES = 3
DOWN = 2  # the site whose database server stops
DRIVER_WORDS = ("operationalerror", "psycopg", "sqlalchemy", "persistenceerror", "traceback",
                "connection refused", "errno", "127.0.0.1", "postgres")


def port_prefix() -> int:
    """P with ports P0, P1, P2 free and below the ephemeral range: site k's server listens on
    P*10 + k, so one URL template ("...:P{site}/...") gives each site a server of its own."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    for _ in range(200):
        prefix = random.randrange(1500, ephemeral_low // 10 - 1)
        if all(_port_is_free(prefix * 10 + k) for k in range(SITES)):
            return prefix
    raise RuntimeError("no free ports for the database servers")


@pytest.fixture
def servers():
    prefix = port_prefix()
    started = []
    try:
        for k in range(SITES):  # not installed: the test fails, it does not skip
            started.append(PostgresServer(port=prefix * 10 + k).start())
            started[-1].create_database("photos")
        yield prefix, started
    finally:
        for server in started:
            server.stop()


def refused_in_words(answer, *codes) -> dict:
    status, body = answer
    assert status == 503 and body.get("error") in codes, answer
    assert body["message"] and not any(w in body["message"].lower() for w in DRIVER_WORDS), body
    return body


def error_lines(cluster, k: int) -> list[str]:
    return [line for line in cluster.log_path(k).read_text().splitlines() if " ERROR " in line]


def test_a_site_whose_database_stops_refuses_in_words_and_heals_when_it_returns(
        servers, cluster_factory, client_factory):
    prefix, pg = servers
    cluster = cluster_factory(sites=SITES, settings_overrides={
        "storage": {"database": f"postgresql+psycopg://postgres@127.0.0.1:{prefix}{{site}}/photos"},
        "capacity": {"cached_events": 1}})  # a read of an older event needs the store
    alice = client_factory(cluster)
    older = create_event(alice, 0, "Older")
    event_id = create_event(alice, 0, "Picnic")
    assert alice.upload(DOWN, event_id, [photo(1)])[0] == 201
    wait_until(lambda: alice.get_json(DOWN, f"/api/events/{event_id}")[1].get("montage_version") == 1,
               10, message="the photo at the site whose database stops")
    errors_before = len(error_lines(cluster, DOWN))

    pg[DOWN].halt()
    try:
        for _ in range(3):  # a person tries again, a script retries
            refused_in_words(alice.post_json(DOWN, "/api/events", {"title": "x"}), "storage_unavailable")
            refused_in_words(alice.upload(DOWN, event_id, [photo(2)]), "storage_unavailable")
            refused_in_words(alice.get_json(DOWN, f"/api/events/{older}"), "storage_unavailable")
            refused_in_words(alice.get_json(DOWN, f"/api/events/{older}/audit"), "storage_unavailable")
            refused_in_words(alice.get_json(DOWN, f"/api/events/{event_id}/audit"), "storage_unavailable")
            assert alice.get_bytes(DOWN, f"/events/{event_id}/audit")[0] == 503  # the page too
            # A first accept sends no round request from a site that could not withdraw it.
            refused_in_words(alice.post_json(DOWN, f"/api/events/{event_id}/votes",
                                             {"montage_version": 1, "decision": "accept"}),
                             "storage_unavailable")
            # Its peers' changes need its vote: they are refused as definite, nothing done.
            refused_in_words(alice.upload(0, event_id, [photo(3)]), "site_unreachable")
            refused_in_words(alice.post_json(1, "/api/events", {"title": "y"}), "site_unreachable")
        status, body = alice.get_json(DOWN, "/api/status")
        assert status == 200 and body["storage"]["ok"] is False, body
        assert body["storage"]["problem"] == "the database server does not answer"
        assert alice.get_json(0, "/api/status")[1]["storage"] == {"ok": True}
        assert alice.get_json(DOWN, f"/api/events/{event_id}")[0] == 200  # a cached view still reads
        new_errors = error_lines(cluster, DOWN)[errors_before:]
        assert 1 <= len(new_errors) <= 5, "\n".join(new_errors)  # the cause, not a line per retry
    finally:
        pg[DOWN].resume()

    wait_until(lambda: alice.get_json(DOWN, "/api/status")[1]["storage"] == {"ok": True}, 20,
               message="the site sees its store back")
    assert alice.get_json(DOWN, f"/api/events/{older}")[1]["title"] == "Older"
    assert alice.upload(DOWN, event_id, [photo(4)])[0] == 201
    assert alice.post_json(DOWN, "/api/events", {"title": "After"})[0] == 201
    assert alice.get_json(DOWN, f"/api/events/{older}/audit")[0] == 200
    assert cluster.running(DOWN)  # never restarted
