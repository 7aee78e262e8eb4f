"""The event store on a real PostgreSQL server (started by the test), chosen by a URL."""

import uuid

import pytest

from domain.aggregates import Coordination, PhotoEvent
from domain.messages import CreateEvent
from domain.records import Began, Committed, Decided, Prepared
from eventstore.store import SiteStore
from tests.postgres import started_postgres


@pytest.fixture(scope="module")
def postgres():
    server = started_postgres()
    yield server
    server.stop()


def test_a_site_store_on_postgresql_keeps_rebuilds_and_scans_events(postgres, tmp_path):
    url = postgres.create_database("photos_store_test")
    event_id = str(uuid.uuid4())
    payload = CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")
    store = SiteStore(url, tmp_path)
    event = PhotoEvent(event_id=event_id)
    event.record(Prepared("0-t1", 0, payload))
    event.record(Committed("0-t1"))
    coordination = Coordination(event_id=event_id)
    coordination.record(Began("0-t1", payload, (0,)))
    coordination.record(Decided("0-t1", True, None))
    store.save(event, coordination)
    store.close()

    reopened = SiteStore(url, tmp_path)
    assert reopened.load_event(event_id).state.title == "Picnic"
    scan = reopened.scan()
    assert scan.existing == {event_id} and scan.coordinated == {event_id}
    assert scan.coordinators_with_work == {event_id}  # decided, not yet acknowledged
    assert [e.type for e in reopened.log(event_id) if e.record is not None] == \
        ["Prepared", "Committed", "Began", "Decided"]
    reopened.close()
