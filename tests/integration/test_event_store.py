"""The event store on a real SQLite file: durable settings, rebuild from the log, audit records."""

import uuid

import pytest

from domain.aggregates import Coordination, PhotoEvent
from domain.errors import StorageNotDurable, StorageUnavailable
from domain.messages import AddPhotos, CreateEvent, PhotoMeta
from domain.records import Acknowledged, Began, Committed, Decided, Prepared
from eventstore.durable import FullSyncSQLitePool, sqlite_pragma
from eventstore.store import SiteStore


def test_the_live_store_runs_sqlite_in_wal_mode_with_synchronous_full(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    event = PhotoEvent(event_id=str(uuid.uuid4()))
    store.save(event)
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL: a commit is fsynced before it returns
    assert (tmp_path / "events.sqlite").exists()
    store.close()


def test_every_connection_the_store_opens_sets_synchronous_full_itself(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    pool = store.app.recorder.datastore.pool
    assert isinstance(pool, FullSyncSQLitePool)
    connections = [pool.get_connection(is_writer=False) for _ in range(4)]  # four at once
    try:
        for connection in connections:
            with connection.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA synchronous")
                assert cursor.fetchone()[0] == 2
    finally:
        for connection in connections:
            pool.put_connection(connection)
    store.check_durable()  # what a site runs at start: passes
    store.close()


class NormalSyncPool(FullSyncSQLitePool):
    """A pool that undoes the setting, as a build whose default is NORMAL would leave it."""

    def _create_connection(self):
        connection = super()._create_connection()
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        return connection


def _reading_connections_normal(datastore) -> None:
    datastore.pool.close()
    datastore.pool = NormalSyncPool.like(datastore.pool)


def _writer_normal(datastore) -> None:
    with datastore.writes:
        datastore.writer()._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
    assert sqlite_pragma(datastore, "synchronous") == 2  # the reading connections are as they were


@pytest.mark.parametrize("undo", [_reading_connections_normal, _writer_normal])
def test_a_store_that_would_not_write_durably_is_refused_at_start_with_the_reason(tmp_path, undo):
    """Whether the pool's connections (reads, and a writer made by that pool) or the writer
    connection alone lost synchronous=FULL."""
    store = SiteStore("sqlite", tmp_path)
    undo(store.app.recorder.datastore)
    with pytest.raises(StorageNotDurable, match="synchronous is '?1'?, not '?2'?"):
        store.check_durable()
    store.close()


def test_every_write_goes_through_the_one_writer_connection(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store = SiteStore("sqlite", tmp_path)
    datastore = store.app.recorder.datastore
    asked = []
    take = datastore.pool.get_connection
    datastore.pool.get_connection = lambda *a, **k: asked.append(k.get("is_writer")) or take(*a, **k)

    def save(n: int) -> None:
        event = PhotoEvent(event_id=str(uuid.uuid4()))
        event.record(Prepared(f"t{n}", 0, CreateEvent("P", 0, "now")))
        store.save(event)

    with ThreadPoolExecutor(8) as threads:
        list(threads.map(save, range(40)))
    assert True not in asked  # no write took a connection from the pool
    assert store.written()[1] == 80
    writer = datastore.writer()
    assert writer is datastore.writer()
    store.close()
    reopened = SiteStore("sqlite", tmp_path)
    assert len(reopened.scan().participants_in_doubt) == 40  # each save durable, none lost
    reopened.close()


def test_a_write_that_fails_is_rolled_back_and_the_writer_takes_the_next_one(tmp_path):
    from eventsourcing.persistence import IntegrityError

    store = SiteStore("sqlite", tmp_path)
    recorder = store.app.recorder
    event = PhotoEvent(event_id=str(uuid.uuid4()))
    event.record(Prepared("t", 0, CreateEvent("P", 0, "now")))
    store.save(event)
    stored = recorder.select_events(event.id)
    with pytest.raises(IntegrityError):  # the same versions again: refused, nothing kept
        recorder.insert_events([stored[-1]] + list(stored))
    assert len(recorder.select_events(event.id)) == 2
    event.record(Committed("t"))
    store.save(event)
    assert [e.originator_version for e in recorder.select_events(event.id)] == [1, 2, 3]
    store.close()


def test_an_event_is_rebuilt_from_its_records_after_the_store_is_reopened(tmp_path):
    event_id = str(uuid.uuid4())
    photo = PhotoMeta("p1", "a" * 64, "b" * 64, "u1", 2)
    store = SiteStore("sqlite", tmp_path)
    event = PhotoEvent(event_id=event_id)
    event.record(Prepared("t1", 0, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")))
    event.record(Committed("t1"))
    event.record(Prepared("t2", 2, AddPhotos(0, (photo,))))
    event.record(Committed("t2"))
    store.save(event)
    store.close()

    reopened = SiteStore("sqlite", tmp_path)
    state = reopened.load_event(event_id).state
    assert state.exists and state.title == "Picnic" and state.home_site == 0
    assert state.photos == (photo,)
    assert state.prepared is None
    assert reopened.logged_events() == ({event_id}, set())
    reopened.close()


def test_the_log_of_an_event_holds_both_roles_records_in_order(tmp_path):
    event_id = str(uuid.uuid4())
    store = SiteStore("sqlite", tmp_path)
    payload = CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")
    coordination = Coordination(event_id=event_id)
    coordination.record(Began("t1", payload, (0, 1)))
    store.save(coordination)
    event = PhotoEvent(event_id=event_id)
    event.record(Prepared("t1", 0, payload))
    store.save(event)
    coordination.record(Decided("t1", True, None))
    coordination.record(Acknowledged("t1", (0,)))
    store.save(coordination)

    types = [(e.role, e.type) for e in store.log(event_id) if e.record is not None]
    assert types == [
        ("coordinator", "Began"),
        ("participant", "Prepared"),
        ("coordinator", "Decided"),
        ("coordinator", "Acknowledged"),
    ]
    assert store.logged_events() == ({event_id}, {event_id})
    store.close()


def test_an_unknown_event_loads_as_none(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    assert store.load_event(str(uuid.uuid4())) is None
    assert store.load_coordination(str(uuid.uuid4())) is None
    store.close()


def test_a_commit_that_fails_leaves_the_writer_ready_for_the_next_write(tmp_path, monkeypatch):
    import sqlite3

    store = SiteStore("sqlite", tmp_path)
    datastore = store.app.recorder.datastore
    event = PhotoEvent(event_id=str(uuid.uuid4()))
    store.save(event)
    with datastore.writes:
        writer = datastore.writer()

    def failing_commit() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer, "commit", failing_commit)
    event.record(Prepared("t", 0, CreateEvent("P", 0, "now")))
    with pytest.raises(StorageUnavailable):  # the guard's word for it (and it is logged)
        store.save(event)
    monkeypatch.undo()
    assert not writer._sqlite_conn.in_transaction  # rolled back, not left open
    reloaded = store.load_event(event.event_id)
    assert reloaded.version == 1  # the failed write kept nothing
    reloaded.record(Prepared("t", 0, CreateEvent("P", 0, "now")))
    store.save(reloaded)
    assert store.load_event(event.event_id).state.prepared.txn_id == "t"
    store.close()
