"""Sites that die (SIGKILL, at named crash points) and come back: nothing lost, nothing split."""

import pytest

from tests.e2e.cluster import wait_until
from tests.e2e.helpers import create_event, nothing_in_doubt, photo, views, wait_same_photos

pytestmark = pytest.mark.e2e


def outcome_everywhere(client, cluster, event_id, txn_prefix):
    """Each site's final word on the one upload transaction the coordinator site ran."""
    outcomes = {}
    for k in cluster.sites:
        status, audit = client.get_json(k, f"/api/events/{event_id}/audit")
        assert status == 200
        ends = {e["type"] for e in audit["entries"]
                if e["role"] == "participant" and e["data"].get("txn_id", "").startswith(txn_prefix)
                and e["type"] in ("Committed", "Aborted")}
        outcomes[k] = ends
    return outcomes


def test_with_site_3_killed_uploads_get_503_and_change_nothing_and_it_catches_up_on_return(
        cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice)
    assert alice.upload(0, event_id, [photo(1)])[0] == 201
    cluster.kill(3)

    status, body = alice.upload(1, event_id, [photo(2)])
    assert (status, body["error"]) == (503, "site_unreachable")
    status, body = alice.post_json(0, "/api/events", {"title": "Not now"})
    assert (status, body["error"]) == (503, "site_unreachable")
    for view in views(alice, cluster, event_id, sites=(0, 1, 2)).values():
        assert view["montage_version"] == 1

    cluster.start(3)
    cluster.wait_ready(3)
    assert views(alice, cluster, event_id, sites=(3,))[3]["montage_version"] == 1
    assert alice.upload(3, event_id, [photo(3)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 2)


def crash_during_upload(cluster, client, event_id, site, point):
    """Restart `site` with the crash point armed; the next upload will kill it there."""
    cluster.terminate(site)
    cluster.start(site, env={"SITE_CRASH_AT": point})
    cluster.wait_ready(site)


def upload_killing(cluster, client, event_id, site, point) -> None:
    """Upload at `site` with the crash point armed (crash_during_upload): it dies there
    (SIGKILL, the answer is unknown to the client), and is started again, unarmed."""
    crash_during_upload(cluster, client, event_id, site, point)
    try:
        client.upload(site, event_id, [photo(1)])
    except OSError:
        pass  # the site died mid-request
    assert cluster.wait_exit(site, 10) == -9
    cluster.start(site)
    cluster.wait_ready(site)


def settled_outcomes(client, cluster, event_id, txn_prefix) -> dict:
    """Once no site holds a transaction in doubt: what each site stored of the transactions
    coordinated by the site `txn_prefix` names."""
    wait_until(lambda: nothing_in_doubt(client, cluster), 15, message="nothing in doubt")
    return outcome_everywhere(client, cluster, event_id, txn_prefix)


def test_a_coordinator_killed_before_storing_its_decision_aborts_the_upload_everywhere(
        cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice)
    upload_killing(cluster, alice, event_id, 1, "coordinator.before_decision_stored")
    outcomes = settled_outcomes(alice, cluster, event_id, "1-")
    assert all(o == {"Aborted"} for o in outcomes.values()), outcomes
    for view in views(alice, cluster, event_id).values():
        assert view["montage_version"] == 0
    assert alice.upload(1, event_id, [photo(2)])[0] == 201


def test_an_upload_whose_coordinator_died_before_its_began_was_stored_aborts_wherever_it_was_prepared(
        cluster, client_factory):
    """Presumed abort: an upload's prepare goes while its Began is being stored, so a crash can
    leave it prepared at the home site with no record at its coordinator; asked, the restarted
    coordinator answers aborted."""
    alice = client_factory()
    event_id = create_event(alice)
    upload_killing(cluster, alice, event_id, 1, "coordinator.before_begin_stored")
    outcomes = settled_outcomes(alice, cluster, event_id, "1-")
    assert all(o <= {"Aborted"} for o in outcomes.values()), outcomes  # aborted, or never prepared
    status, audit = alice.get_json(1, f"/api/events/{event_id}/audit")
    assert status == 200
    assert not [e for e in audit["entries"] if e["type"] == "Began" and e["data"]["txn_id"].startswith("1-")]
    for view in views(alice, cluster, event_id).values():
        assert view["montage_version"] == 0
    assert alice.upload(1, event_id, [photo(2)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 1)


def test_a_coordinator_killed_after_storing_commit_but_before_sending_it_commits_everywhere(
        cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice)
    upload_killing(cluster, alice, event_id, 2, "coordinator.after_decision_stored_before_send")
    wait_same_photos(alice, cluster, event_id, 1)
    outcomes = settled_outcomes(alice, cluster, event_id, "2-")
    assert all(o == {"Committed"} for o in outcomes.values()), outcomes


def test_a_participant_killed_after_storing_its_prepare_learns_the_outcome_after_restart(
        cluster, client_factory):
    alice = client_factory()
    event_id = create_event(alice, 1)  # so that site 0's only transaction is the upload
    crash_during_upload(cluster, alice, event_id, 3, "participant.after_prepare_stored")
    status, body = alice.upload(0, event_id, [photo(1)])
    assert (status, body["error"]) == (503, "site_unreachable")  # its vote never arrived
    assert cluster.wait_exit(3, 10) == -9
    cluster.start(3)
    cluster.wait_ready(3)
    wait_until(lambda: nothing_in_doubt(alice, cluster), 15, message="site 3 resolved its doubt")
    outcomes = outcome_everywhere(alice, cluster, event_id, "0-")
    assert all(o == {"Aborted"} for o in outcomes.values()), outcomes
    assert alice.upload(3, event_id, [photo(2)])[0] == 201
    wait_same_photos(alice, cluster, event_id, 1)


def test_every_site_killed_at_once_and_restarted_loses_nothing_committed(cluster, client_factory):
    alice, bob = client_factory(), client_factory()
    events = [create_event(alice, k, f"Event {k}") for k in cluster.sites]
    for n, event_id in enumerate(events):
        assert alice.upload(n, event_id, [photo(n)])[0] == 201
        assert bob.upload((n + 1) % 4, event_id, [photo(n + 10)])[0] == 201
    before = {e: wait_same_photos(alice, cluster, e, 2)[0]["photos"] for e in events}

    for k in cluster.sites:
        cluster.kill(k)
    for k in cluster.sites:
        cluster.start(k)
    for k in cluster.sites:
        cluster.wait_ready(k)

    for event_id in events:
        vs = views(alice, cluster, event_id)
        assert all(v["photos"] == before[event_id] for v in vs.values())
    assert all(alice.get_json(k, "/api/status")[1]["events"] == 4 for k in cluster.sites)
