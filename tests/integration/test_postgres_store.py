"""The event store on a real PostgreSQL server (started by the test), chosen by a URL: durable
settings on every connection, and a server that goes away and comes back."""

import logging
import uuid

import pytest

from domain.aggregates import Coordination, PhotoEvent
from domain.errors import StorageUnavailable
from domain.messages import CreateEvent
from domain.records import Began, Committed, Decided, Prepared
from eventstore.durable import sqlalchemy_value
from eventstore.store import SiteStore
from tests.postgres import PostgresServer

DRIVER_WORDS = ("operationalerror", "psycopg", "sqlalchemy", "errno", "connection refused", "127.0.0.1")


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()  # not installed: the tests fail, they do not skip
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


def test_the_store_commits_synchronously_even_where_the_database_default_says_otherwise(postgres, tmp_path):
    url = postgres.create_database("photos_sync_off")
    postgres.sql("photos_sync_off", "ALTER DATABASE photos_sync_off SET synchronous_commit = off")
    assert postgres.sql("photos_sync_off", "SHOW synchronous_commit") == "off"
    store = SiteStore(url, tmp_path)
    store.check_durable()  # what a site runs at start
    assert sqlalchemy_value(store.app.recorder.datastore.engine, "SHOW synchronous_commit") == "on"
    store.close()


def saved_event(store) -> str:
    event_id = str(uuid.uuid4())
    event = PhotoEvent(event_id=event_id)
    event.record(Prepared("0-t1", 0, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")))
    store.save(event)
    return event_id


def test_a_stopped_server_means_storage_unavailable_in_words_and_the_store_heals_when_it_returns(
        postgres, tmp_path, caplog):
    store = SiteStore(postgres.create_database("photos_outage"), tmp_path)
    event_id = saved_event(store)
    assert store.health.as_json() == {"ok": True}
    postgres.halt()
    try:
        with caplog.at_level(logging.ERROR, logger="eventstore"):
            for _ in range(20):
                with pytest.raises(StorageUnavailable) as read:
                    store.load_event(event_id)
                with pytest.raises(StorageUnavailable) as write:
                    saved_event(store)
                assert not store.probe()
        for error in (read.value, write.value):
            assert "database server does not answer" in error.message
            assert not any(word in error.message.lower() for word in DRIVER_WORDS), error.message
        assert store.health.as_json() == {"ok": False, "problem": "the database server does not answer"}
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "OperationalError" in errors[0].getMessage()  # the cause, once
    finally:
        postgres.resume()
    assert store.probe() and store.health.as_json() == {"ok": True}  # the pool reconnects
    assert store.load_event(saved_event(store)).state.prepared.txn_id == "0-t1"
    assert store.load_event(event_id) is not None
    store.close()
