"""Snapshots: an aggregate rebuilt from its latest snapshot is the one its whole log gives."""

import time
import uuid

import pytest

from domain import participant
from domain.aggregates import Coordination, PhotoEvent
from domain.config import SiteConfig, Timing
from domain.event_state import EventState
from domain.messages import AddPhotos, Ballot, CastVote, CreateEvent, Decision, PhotoMeta, Prepare, Publish, StartRound
from domain.records import Acknowledged, Began, Decided, Reported
from eventstore import snapshots
from eventstore.snapshots import SNAPSHOT_EVERY, SnapshotFormatError, decode_state, encode_state
from eventstore.store import SiteStore

CONFIG = SiteConfig(0, (0, 1, 2, 3), 10, Timing(3.0, 0.2, 5.0, 5.0, 2.0))
USERS = [f"user-{n}" for n in range(10)]


def a_long_event(store: SiteStore) -> PhotoEvent:
    """Created, 40 photos from 10 people, a round with everyone's accept, published: ~100 records."""
    event_id = str(uuid.uuid4())
    aggregate = PhotoEvent(event_id=event_id)

    def run(message):
        step = participant.step(aggregate.state, message, CONFIG, time.time())
        for record in step.records:
            aggregate.record(record)
        store.save(aggregate)
        assert aggregate.state == step.state

    def commit(txn, payload):
        run(Prepare(txn, event_id, 0, payload))
        run(Decision(txn, event_id, True))

    commit("0-create", CreateEvent("A long day", 0, "2026-11-26T10:00:00+00:00"))
    for n in range(40):
        meta = PhotoMeta(uuid.uuid4().hex, f"{n:064x}", f"{n + 1000:064x}", USERS[n % 10], n % 4, "Ann")
        commit(f"0-up{n}", AddPhotos(n, (meta,)))
    deadline = time.time() + 60
    commit("0-round", StartRound(1, 40, deadline, tuple(USERS)))
    for user in USERS:
        run(CastVote(event_id, user, 40, "accept", time.time()))
    commit("0-publish", Publish(1, 40, deadline, tuple(USERS)))
    assert aggregate.state.published_version == 40
    return aggregate


def a_long_coordination(store: SiteStore, event_id: str) -> Coordination:
    aggregate = Coordination(event_id=event_id)
    for n in range(20):
        aggregate.record(Began(f"0-up{n}", AddPhotos(n, ()), (0, 1, 2)))
        aggregate.record(Decided(f"0-up{n}", n % 3 != 0, None if n % 3 else "conflict"))
        for site in (0, 1, 2):
            aggregate.record(Acknowledged(f"0-up{n}", (site,)))
        store.save(aggregate)
    aggregate.record(Began("0-round", StartRound(1, 20, 1e10, ("a", "b")), (0, 1, 2)))
    aggregate.record(Decided("0-round", True, None))
    aggregate.record(Reported(1, Ballot("a", "accept", 5.0, 1)))
    store.save(aggregate)
    return aggregate


@pytest.fixture
def store(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    yield store
    store.close()


def test_a_rebuilt_event_starts_from_a_snapshot_and_equals_its_whole_log_replayed(store):
    event = a_long_event(store)
    coordination = a_long_coordination(store, event.event_id)

    for aggregate in (event, coordination):
        taken = list(store.app.snapshots.get(aggregate.id))
        assert taken and taken[-1].originator_version == aggregate.version // SNAPSHOT_EVERY * SNAPSHOT_EVERY
        replayed = store._replay(aggregate.id)
        loaded = store._get(aggregate.id)
        assert loaded.state == replayed.state == aggregate.state
        assert loaded.version == replayed.version == aggregate.version


def test_a_snapshot_this_code_cannot_read_is_ignored_and_the_log_replayed(store, monkeypatch):
    event = a_long_event(store)
    monkeypatch.delitem(snapshots.STATE_TYPES, "Round")  # as if written by other code

    loaded = store.load_event(event.event_id)

    assert loaded.state == event.state and loaded.version == event.version


def test_the_audit_log_and_the_start_up_scan_do_not_see_snapshots(store):
    event = a_long_event(store)

    assert len(store.log(event.event_id)) == event.version
    assert event.event_id in store.scan().existing


def test_states_keep_tuples_frozensets_and_mappings_apart():
    state = EventState("e", exists=True, ended=frozenset({3, 1}), answers={"t1": None, "t2": "conflict"})

    data = encode_state(state)

    assert decode_state(data) == state
    assert isinstance(decode_state(encode_state(((1, 2), frozenset({1})))), tuple)


def test_an_unknown_type_cannot_be_snapshotted_or_read():
    with pytest.raises(TypeError):
        encode_state({"x": object()})
    with pytest.raises(SnapshotFormatError):
        decode_state({"@": "Nope"})
    with pytest.raises(SnapshotFormatError):
        decode_state({"@": "Round", "round": 1})  # fields missing
