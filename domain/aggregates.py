"""The event-sourced aggregates that hold one event's log at one site.

`PhotoEvent` is the event as this site's participant knows it (the replica); `Coordination` is
the log of the transactions this site coordinates for the event. Each stored event is one
protocol record (domain.records), named after it, so the log reads as the protocol ran.

Each record is folded once. A protocol step has already folded its records into the state it
returns, so the aggregate `take`s that state with the step's records as pending events: no
record is turned into data and parsed back, nor folded a second time. Only a replay from the
store parses a stored record and folds it (`RecordEvent.apply`), as it has nothing else to go by.

A log's first record rides in its creation (`Created.first`, `RecordLog.begun`): a new event's
log costs one stored event at each role, not two. Logs written before 2026-12 hold a bare
creation and the record after it; both read alike (`first_record`, and each reader of the log).
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain import coordinator, event_state
from domain import wire
from domain.wire import WIRE_TYPES, from_wire, to_wire
from domain.records import COORDINATOR_RECORDS, PARTICIPANT_RECORDS, acknowledging_sites

RECORD_TYPES = {**WIRE_TYPES, **{c.__name__: c for c in PARTICIPANT_RECORDS + COORDINATOR_RECORDS}}
wire.register(*PARTICIPANT_RECORDS, *COORDINATOR_RECORDS)


def record_from_data(name: str, data: dict):
    if name == "Acknowledged" and "site" in data:  # one site per record (logs before 2026-12)
        data = {"txn_id": data["txn_id"], "sites": acknowledging_sites(data)}
    return from_wire({"type": name, **data}, RECORD_TYPES)


def record_to_data(record) -> dict:
    data = to_wire(record)
    data.pop("type")
    return data


def first_record(first: dict | None):
    """The record a log's creation carries (its wire form, `Created.first`), or None."""
    if not first:
        return None
    data = dict(first)
    return record_from_data(data.pop("type"), data)


class RecordEvent(Aggregate.Event):
    """A stored protocol record; the class name is the record's name and `data` its fields as
    JSON data (the stored form, which the audit and the start-up scan read as it is)."""

    data: dict

    @property
    def record(self):
        """The domain record (domain.records) this event stores."""
        return record_from_data(type(self).__name__, self.data)

    def apply(self, aggregate) -> None:
        """Replay only: live records arrive folded already (`RecordLog.take`)."""
        aggregate.state = aggregate.fold(aggregate.state, self.record)


class RecordLog(Aggregate):
    """A role's log: its `state` and, per role, `fold(state, record) -> state`."""

    @classmethod
    def initial_state(cls, event_id: str):
        """The state of a log with no records yet, without making an aggregate for it."""
        raise NotImplementedError

    # Whether a step's state is what its stored records fold into, and nothing else: then the
    # aggregate takes it as its own. A participant's is (domain.participant.step returns
    # fold_all(state, records)); a coordinator's also holds what is never stored (yes votes and
    # acknowledgements heard, whether a client has its answer), so Coordination folds the records
    # into its stored state itself (directly: no record is turned into data and parsed back).
    takes_step_state = False

    def __init__(self, event_id: str, first: dict | None = None):
        """What a replay of the log's creation makes: the initial state, and the first record
        folded into it when the creation carries one (`begun`)."""
        self.event_id = event_id
        self.state = self.initial_state(event_id)
        record = first_record(first)
        if record is not None:
            self.state = self.fold(self.state, record)

    @classmethod
    def begun(cls, event_id: str, records, step_state):
        """A new log whose creation carries the step's first record (the rest follow it as
        events of their own), taking the step's state as `take` does: what the library's
        constructor, `cls(event_id=..., first=...)`, and a replay of it make
        (tests/integration/test_stored_records.py), built without folding the first record again
        (the replay's `__init__` does that) nor the constructor's signature checks and coercion."""
        aggregate_id, timestamp = cls.create_id(event_id), cls.Created.create_timestamp()
        created = cls.Created(originator_topic=get_topic(cls), originator_id=aggregate_id,
                              originator_version=cls.INITIAL_VERSION, timestamp=timestamp,
                              event_id=event_id, first=to_wire(records[0]))
        aggregate = cls.__new__(cls)
        aggregate.__base_init__(aggregate_id, cls.INITIAL_VERSION, timestamp)
        aggregate.event_id, aggregate.state = event_id, cls.initial_state(event_id)
        aggregate.pending_events.append(created)
        state = step_state if cls.takes_step_state else aggregate._folded(records)
        aggregate._append(records[1:])
        aggregate.state = state
        return aggregate

    def take(self, records, step_state) -> None:
        """Append a step's records as the next pending events; the aggregate's state becomes
        `step_state` (see takes_step_state) or the fold of the records into its own."""
        state = step_state if self.takes_step_state else self._folded(records)
        self._append(records)
        self.state = state

    def record(self, record) -> None:
        """Fold one record and append it (for tools and tests; actors `take` a step's)."""
        state = self._folded((record,))
        self._append((record,))
        self.state = state

    def _folded(self, records):
        state = self.state
        for record in records:
            state = self.fold(state, record)
        return state

    def _append(self, records) -> None:
        """The records as the next events, pending until saved: built directly, as
        `trigger_event` would, but without applying them (they are folded already)."""
        for record in records:
            event_class = getattr(type(self), type(record).__name__)
            version = self.version + 1
            timestamp = event_class.create_timestamp()
            self.pending_events.append(event_class(
                originator_id=self.id, originator_version=version, timestamp=timestamp,
                data=record_to_data(record)))
            self.version, self.modified_on = version, timestamp


class PhotoEvent(RecordLog):
    class Prepared(RecordEvent): ...
    class Refused(RecordEvent): ...
    class Committed(RecordEvent): ...
    class Aborted(RecordEvent): ...
    class VoteCast(RecordEvent): ...
    class Withdrawn(RecordEvent): ...

    fold = staticmethod(event_state.fold)
    takes_step_state = True

    @classmethod
    def initial_state(cls, event_id: str) -> event_state.EventState:
        return event_state.initial(event_id)

    @staticmethod
    def create_id(event_id: str) -> UUID:
        return UUID(event_id)


class Coordination(RecordLog):
    class Began(RecordEvent): ...
    class Decided(RecordEvent): ...
    class Acknowledged(RecordEvent): ...
    class Reported(RecordEvent): ...

    fold = staticmethod(coordinator.fold)

    @classmethod
    def initial_state(cls, event_id: str) -> coordinator.CoordinatorState:
        return coordinator.CoordinatorState(event_id)

    @staticmethod
    def create_id(event_id: str) -> UUID:
        return coordination_id(event_id)


def coordination_id(event_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"photo-sessions:coordination:{event_id}")
