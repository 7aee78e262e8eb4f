"""Stored records: written the new way they are the very bytes the library's mapper wrote before
(domain.aggregates, eventstore.stored_records), and logs written by the code before are read by
this code (rebuild, snapshots, audit, start-up scan) as they were."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregates import Coordination, PhotoEvent, record_to_data
from domain.wire import to_wire
from domain.messages import AddPhotos, Ballot, CreateEvent, PhotoMeta, StartRound
from domain.records import (
    Aborted,
    Acknowledged,
    Began,
    Committed,
    Decided,
    Prepared,
    Refused,
    Reported,
    VoteCast,
    Withdrawn,
)
from eventstore.store import SiteStore

EVENT = "6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10"

# One event's log as the code before this change (4924b37) stored it at a site: the rows of
# `stored_events` (aggregate, version, topic, state), unchanged.
OLD_ROWS = [
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 1, 'domain.aggregates:PhotoEvent.Created',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066046+00:00"},"originator_topic":"domain.aggregates:PhotoEvent","event_id":"6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10"}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 2, 'domain.aggregates:PhotoEvent.Prepared',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066196+00:00"},"data":{"txn_id":"0-create","coordinator":0,"payload":{"type":"CreateEvent","title":"Picnic \xc2\xab\xc3\xa9t\xc3\xa9\xc2\xbb","home_site":0,"created_at":"2026-11-26T10:00:00+00:00"}}}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 3, 'domain.aggregates:PhotoEvent.Committed',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066267+00:00"},"data":{"txn_id":"0-create"}}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 4, 'domain.aggregates:PhotoEvent.Prepared',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066364+00:00"},"data":{"txn_id":"1-up","coordinator":1,"payload":{"type":"AddPhotos","base_version":0,"photos":[{"type":"PhotoMeta","photo_id":"p1","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","thumb_sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","submitter":"ana","site":1,"submitter_name":"Ana \xc3\x91"}]}}}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 5, 'domain.aggregates:PhotoEvent.Committed',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066406+00:00"},"data":{"txn_id":"1-up"}}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 6, 'domain.aggregates:PhotoEvent.Prepared',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066452+00:00"},"data":{"txn_id":"0-round","coordinator":0,"payload":{"type":"StartRound","round":1,"version":1,"deadline":1764500000.25,"submitters":["ana"],"request":"","ballot":null}}}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 7, 'domain.aggregates:PhotoEvent.Committed',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066483+00:00"},"data":{"txn_id":"0-round"}}'),
    ('6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10', 8, 'domain.aggregates:PhotoEvent.VoteCast',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066561+00:00"},"data":{"round":1,"ballot":{"type":"Ballot","user":"ana","decision":"accept","at":1764499000.5,"site":0}}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 1, 'domain.aggregates:Coordination.Created',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066777+00:00"},"originator_topic":"domain.aggregates:Coordination","event_id":"6f1c3f0e-3c1a-4b4e-9a51-0d2a7c1e5b10"}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 2, 'domain.aggregates:Coordination.Began',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066856+00:00"},"data":{"txn_id":"0-create","payload":{"type":"CreateEvent","title":"Picnic \xc2\xab\xc3\xa9t\xc3\xa9\xc2\xbb","home_site":0,"created_at":"2026-11-26T10:00:00+00:00"},"sites":[0,1]}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 3, 'domain.aggregates:Coordination.Decided',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066909+00:00"},"data":{"txn_id":"0-create","commit":true,"reason":null}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 4, 'domain.aggregates:Coordination.Acknowledged',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066947+00:00"},"data":{"txn_id":"0-create","site":0}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 5, 'domain.aggregates:Coordination.Acknowledged',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.066974+00:00"},"data":{"txn_id":"0-create","site":1}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 6, 'domain.aggregates:Coordination.Began',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.067000+00:00"},"data":{"txn_id":"0-round","payload":{"type":"StartRound","round":1,"version":1,"deadline":1764500000.25,"submitters":["ana"],"request":"","ballot":null},"sites":[0,1]}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 7, 'domain.aggregates:Coordination.Decided',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.070435+00:00"},"data":{"txn_id":"0-round","commit":true,"reason":null}}'),
    ('9090fcfd-48cd-5967-b4fe-6f2570522a34', 8, 'domain.aggregates:Coordination.Reported',
     b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-30T02:07:49.070499+00:00"},"data":{"round":1,"ballot":{"type":"Ballot","user":"ana","decision":"accept","at":1764499000.5,"site":0}}}'),
]

TEXT = st.text(max_size=12)  # any text a user may give: non-ASCII, quotes, control characters
SITE = st.integers(0, 3)
PHOTO = st.builds(PhotoMeta, TEXT, TEXT, TEXT, TEXT, SITE, TEXT)
PAYLOAD = st.one_of(
    st.builds(CreateEvent, TEXT, SITE, TEXT),
    st.builds(AddPhotos, st.integers(0, 10**6), st.lists(PHOTO, max_size=3).map(tuple)),
    st.builds(StartRound, st.integers(1, 99), st.integers(0, 99), st.floats(allow_nan=False),
              st.lists(TEXT, max_size=3).map(tuple)),
)
BALLOT = st.builds(Ballot, TEXT, st.sampled_from(["accept", "reject"]), st.floats(allow_nan=False), SITE)
PARTICIPANT_RECORD = st.one_of(
    st.builds(Prepared, TEXT, SITE, PAYLOAD),
    st.builds(Refused, TEXT, SITE, TEXT),
    st.builds(Committed, TEXT),
    st.builds(Aborted, TEXT, st.none() | TEXT, st.none() | PAYLOAD),
    st.builds(VoteCast, st.integers(1, 99), BALLOT),
    st.builds(Withdrawn, TEXT),
)
COORDINATOR_RECORD = st.one_of(
    st.builds(Began, TEXT, PAYLOAD, st.lists(SITE, max_size=4).map(tuple)),
    st.builds(Decided, TEXT, st.booleans(), st.none() | TEXT),
    st.builds(Acknowledged, TEXT, st.lists(SITE, min_size=1, max_size=4).map(tuple)),
    st.builds(Reported, st.integers(1, 99), BALLOT),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = SiteStore("sqlite", tmp_path_factory.mktemp("store"))
    yield store
    store.close()


def old_way(aggregate, record) -> None:
    """How the code before recorded a record: the library's trigger_event (which applies it)."""
    aggregate.trigger_event(getattr(type(aggregate), type(record).__name__), data=record_to_data(record))


@settings(max_examples=300, deadline=None)
@given(records=st.one_of(st.lists(PARTICIPANT_RECORD, min_size=1, max_size=3).map(lambda r: (PhotoEvent, r)),
                         st.lists(COORDINATOR_RECORD, min_size=1, max_size=3).map(lambda r: (Coordination, r))))
def test_records_are_stored_as_the_very_bytes_the_librarys_mapper_writes(store, records):
    cls, records = records
    aggregate = cls(event_id=str(uuid.uuid4()))
    aggregate._append(tuple(records))  # what take() stores; these records need not fold
    events = aggregate.collect_events()[1:]  # after the creation, which the mapper writes

    for event in events:
        direct = store._encoder.stored(event)
        assert direct == store.app.mapper.to_stored_event(event)
        assert store.app.mapper.to_domain_event(direct).record == records[event.originator_version - 2]


JSON_DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.text() |
    st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(data=JSON_DATA)
def test_any_record_data_is_written_as_the_transcoders_encoder_writes_it(store, data):
    event = PhotoEvent.Committed(originator_id=uuid.uuid4(), originator_version=2,
                                 timestamp=PhotoEvent.Committed.create_timestamp(), data={"any": data})
    assert store._encoder.stored(event) == store.app.mapper.to_stored_event(event)


@pytest.mark.parametrize("cls", [PhotoEvent, Coordination])
def test_an_aggregates_creation_is_stored_as_the_very_bytes_the_librarys_mapper_writes(store, cls):
    event_id = str(uuid.uuid4())
    (created,) = cls(event_id=event_id).collect_events()
    direct = store._encoder.stored(created)
    assert direct == store.app.mapper.to_stored_event(created)
    assert b'"event_id":"%s"' % event_id.encode() in direct.state
    assert store.app.mapper.to_domain_event(direct).event_id == event_id


FIRST = {PhotoEvent: Prepared("0-c", 0, CreateEvent("P", 0, "now")),
         Coordination: Began("0-c", CreateEvent("P", 0, "now"), (0, 1, 2, 3))}


@pytest.mark.parametrize("cls", [PhotoEvent, Coordination])
def test_a_log_begun_directly_is_what_the_librarys_constructor_makes(store, cls):
    event_id, record = str(uuid.uuid4()), FIRST[cls]
    state = cls.fold(cls.initial_state(event_id), record)
    direct, generic = cls.begun(event_id, (record,), state), cls(event_id=event_id, first=to_wire(record))
    made_at = ("_created_on", "_modified_on", "_pending_events")  # the time stamps differ
    assert {k: v for k, v in vars(direct).items() if k not in made_at} == \
        {k: v for k, v in vars(generic).items() if k not in made_at}
    (opened,), (constructed,) = direct.collect_events(), generic.collect_events()
    assert type(opened) is type(constructed)
    assert replace(opened, timestamp=constructed.timestamp) == constructed
    assert direct.created_on == direct.modified_on == opened.timestamp
    stored = store._encoder.stored(opened)
    assert stored == store.app.mapper.to_stored_event(opened)
    assert store.app.mapper.to_domain_event(stored).mutate(None).state == direct.state


def test_an_event_of_other_attributes_goes_through_the_librarys_mapper(store):
    event = PhotoEvent(event_id=str(uuid.uuid4())).collect_events()[0]
    event.__dict__["photos"] = ("a", "b")  # not a plain value: the mapper's transcoder decides
    assert store._encoder._plain_state(event) is None
    assert store._encoder.stored(event) == store.app.mapper.to_stored_event(event)


def test_a_log_written_by_the_code_before_is_read_as_it_was(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    store.app.recorder.insert_events(
        [StoredEvent(uuid.UUID(aggregate_id), version, topic, state) for aggregate_id, version, topic, state in OLD_ROWS])

    event, coordination = store.load_event(EVENT), store.load_coordination(EVENT)

    assert event.version == 8 and coordination.version == 8
    assert event.state.title == "Picnic «été»" and event.state.photos[0].submitter_name == "Ana Ñ"
    assert event.state.round.ballots["ana"] == Ballot("ana", "accept", 1764499000.5, 0)
    assert coordination.state.active.reported["ana"].at == 1764499000.5
    assert coordination.state.txns["0-create"].acks == {0, 1}  # one Acknowledged per site then
    assert [e.type for e in store.log(EVENT)].count("Prepared") == 3
    assert EVENT in store.scan().existing
    # and it goes on: new records follow the old ones in the same log, and replay with them
    prepared = Prepared("1-up2", 1, AddPhotos(1, ()))
    event.take((prepared,), PhotoEvent.fold(event.state, prepared))
    store.save(event)
    assert store._replay(event.id).state == event.state
    store.close()


def test_records_stored_the_new_way_are_those_the_old_way_stored(tmp_path):
    """Same records, one aggregate through the library's own path (as before), one through
    `take`: the stored rows differ only in their time stamps."""
    store = SiteStore("sqlite", tmp_path)
    old, new = PhotoEvent(event_id=str(uuid.uuid4())), PhotoEvent(event_id=str(uuid.uuid4()))
    records = (Prepared("0-c", 0, CreateEvent("P", 0, "now")), Committed("0-c"),
               Aborted("1-u", "conflict", AddPhotos(1, ())))
    state = new.state
    for record in records:
        old_way(old, record)
        state = PhotoEvent.fold(state, record)
    store.app.save(old)  # Application.save: the mapper, as before
    new.take(records, state)
    store.save(new)

    def rows(aggregate):
        return [(s.originator_version, s.topic, s.state.split(b'"data":', 1)[-1])
                for s in store.app.recorder.select_events(aggregate.id)][1:]

    assert rows(old) == rows(new)
    assert store.load_event(old.event_id).state == old.state
    assert store.load_event(new.event_id).state == new.state == replace(old.state, event_id=new.event_id)
    store.close()


STEPS = {  # a new log's first step, as the actors take it: its records, one or more
    PhotoEvent: [(Prepared("0-c", 0, CreateEvent("P", 0, "now")),),
                 (Aborted("1-u", "conflict", AddPhotos(1, ())),),
                 (Refused("1-u", 1, "not_found"), Withdrawn("0-r"))],
    Coordination: [(Began("0-c", CreateEvent("P", 0, "now"), (0, 1, 2, 3)),),
                   (Began("0-u", AddPhotos(0, ()), (0, 1)), Decided("0-u", False, "conflict"))],
}


def folded(cls, event_id, records):
    state = cls.initial_state(event_id)
    for record in records:
        state = cls.fold(state, record)
    return state


@pytest.mark.parametrize("cls, records", [(cls, r) for cls, steps in STEPS.items() for r in steps])
def test_a_log_begun_with_its_first_records_is_what_a_replay_of_it_makes(store, cls, records):
    """A new log's creation carries its first record (one stored event, not two): stored as the
    library's mapper writes it, rebuilt by the library's replay into the same state and version,
    and read by the audit and the start-up scan as a creation followed by that record."""
    event_id = str(uuid.uuid4())
    begun = cls.begun(event_id, records, folded(cls, event_id, records))
    assert begun.state == folded(cls, event_id, records)
    assert begun.version == len(records) and begun.created_on == begun.pending_events[0].timestamp
    created = begun.pending_events[0]
    assert store._encoder.stored(created) == store.app.mapper.to_stored_event(created)
    store.save(begun)

    assert len(store.app.recorder.select_events(begun.id)) == len(records)
    replayed = store._replay(begun.id)
    assert (replayed.state, replayed.version, replayed.event_id) == (begun.state, begun.version, event_id)
    entries = [e for e in store.log(event_id)]
    assert [e.type for e in entries] == ["Created"] + [type(r).__name__ for r in records]
    assert [e.record for e in entries[1:]] == list(records)
    assert entries[1].data == record_to_data(records[0]) and entries[0].at == entries[1].at
    found = store.scan()
    assert event_id in (found.logged if cls is PhotoEvent else found.coordinated)


def test_the_scan_reads_a_first_record_carried_by_a_creation_as_one_stored_on_its_own(tmp_path):
    """The scan folds what the writers took and what it reads back from the log alike, for a
    creation carrying its first record as for a bare creation and the record after it."""
    store = SiteStore("sqlite", tmp_path)
    carried, separate = str(uuid.uuid4()), str(uuid.uuid4())
    prepared = (Prepared("0-c", 0, CreateEvent("P", 0, "now")),)
    store.save(PhotoEvent.begun(carried, prepared, folded(PhotoEvent, carried, prepared)))
    old = PhotoEvent(event_id=separate)
    old.record(prepared[0])
    store.save(old)
    store.checkpoint()  # folds what the writers took
    from_writers = store.scan()
    store.close()
    (tmp_path / "scan-checkpoint.json").unlink()
    reopened = SiteStore("sqlite", tmp_path)
    from_log = reopened.scan()  # reads every stored event back
    reopened.close()
    for scan in (from_writers, from_log):
        assert scan.logged == scan.participants_in_doubt == {carried, separate}
    assert from_writers.to_json() == from_log.to_json()
