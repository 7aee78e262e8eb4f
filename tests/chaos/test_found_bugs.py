"""Service bugs the chaos runs found, each reduced to a deterministic scenario and kept as a
regression test: each was a definite answer ("nothing was done") for a change that happened."""

from __future__ import annotations

import threading
import time

import pytest

from tests.chaos.sites import ChaosSites
from tests.e2e.cluster import Client, wait_until
from tests.e2e.helpers import create_event, photo

pytestmark = pytest.mark.chaos

# settings-test.toml: prepare 1.5 + ack wait 1 + request 2 + 5 s, web/service.py run_transaction
PAST_THE_TRANSACTION_BUDGET_S = 10.5


@pytest.fixture
def sites(tmp_path):
    """Three sites behind link proxies, rounds long enough to look at; site 0 is the home site
    of the events the tests make."""
    cluster = ChaosSites(tmp_path, 3, {"event": {"voting_period_s": 30}})
    cluster.start_proxies()
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.close()


def test_an_accept_whose_home_sites_reply_is_lost_is_recorded_in_the_round_it_started(sites):
    alice = Client(sites.url)
    event_id = create_event(alice, site=0)  # site 0 is the home site: it starts rounds
    status, body = alice.upload(1, event_id, [photo(1)])
    assert status == 201, body
    wait_until(lambda: alice.get_json(1, f"/api/events/{event_id}")[1]["montage_version"] == 1, 10)
    sites.proxies.set(1, 0, "drop_replies")  # site 1's requests reach site 0; answers are lost

    status, body = alice.post_json(1, f"/api/events/{event_id}/votes",
                                   {"montage_version": 1, "decision": "accept"})

    assert status == 200 and body["round"] == 1, body
    # Alice is the only submitter: the accept that opened the round decides it.
    wait_until(lambda: all(alice.get_json(k, f"/api/events/{event_id}")[1]["published_version"] == 1
                           for k in sites.sites), 15)


def test_an_accept_answered_503_starts_no_round_even_when_its_request_arrives_late(sites):
    alice, watcher = Client(sites.url), Client(sites.url)
    event_id = create_event(alice, site=0)
    status, body = alice.upload(1, event_id, [photo(1)])
    assert status == 201, body
    wait_until(lambda: alice.get_json(1, f"/api/events/{event_id}")[1]["montage_version"] == 1, 10)
    sites.pause(0)  # the home site takes the requests in (the kernel queues them), answers none
    try:
        status, body = alice.post_json(1, f"/api/events/{event_id}/votes",
                                       {"montage_version": 1, "decision": "accept"})
    finally:
        sites.resume(0)  # now it serves the queued copies of the request: too late

    assert (status, body["error"]) == (503, "site_unreachable"), body

    def home_refused_a_late_copy() -> bool:  # site 1 had withdrawn the request: it voted no
        entries = watcher.get_json(0, f"/api/events/{event_id}/audit")[1]["entries"]
        return any(e["type"] == "Decided" and e["data"].get("reason") == "request_spent" for e in entries)

    wait_until(home_refused_a_late_copy, 30)
    wait_until(lambda: all(not watcher.get_json(k, "/api/status")[1]["in_doubt"] for k in sites.sites), 30)
    states = {k: watcher.get_json(k, f"/api/events/{event_id}")[1] for k in sites.sites}
    assert all(v["state"] == "open" and v["last_outcome"] is None for v in states.values()), states


def test_an_upload_answered_503_commits_nothing_even_when_its_site_stalls_after_deciding(sites):
    alice, watcher = Client(sites.url), Client(sites.url)
    event_id = create_event(alice, site=0)
    # Site 1's channel to site 2 is open before the link slows down (an event coordinated by
    # site 1 has been prepared at site 2), as it is once sites have talked: dialling across the
    # slow link would itself take 3 one-way delays, and the prepare would time out instead.
    create_event(alice, site=1)
    sites.proxies.set(1, 2, "delay", 0.6)  # site 2 votes in time, and acknowledges 1.2 s late

    def stall_site_1_once_the_commit_is_decided():
        wait_until(lambda: watcher.get_json(0, f"/api/events/{event_id}")[1]["montage_version"] == 1,
                   10, interval=0.01)
        sites.pause(1)  # while it waits for site 2's acknowledgement: longer than its budget
        time.sleep(PAST_THE_TRANSACTION_BUDGET_S)
        sites.resume(1)

    stall = threading.Thread(target=stall_site_1_once_the_commit_is_decided)
    stall.start()
    status, body = alice.upload(1, event_id, [photo(1)])
    stall.join()

    versions = {k: watcher.get_json(k, f"/api/events/{event_id}")[1]["montage_version"]
                for k in sites.sites}
    assert not (status == 503 and any(versions.values())), (
        f"the upload got {status} {body}, which promises nothing was done, "
        f"yet the sites hold its photo: versions {versions}")
