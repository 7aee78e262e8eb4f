"""The event-sourced aggregates that hold one event's log at one site.

`PhotoEvent` is the event as this site's participant knows it (the replica); `Coordination` is
the log of the transactions this site coordinates for the event. Each stored event is one
protocol record (domain.records), named after it, so the log reads as the protocol ran.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain import coordinator, event_state
from domain.wire import WIRE_TYPES, from_wire, to_wire
from domain.records import COORDINATOR_RECORDS, PARTICIPANT_RECORDS

RECORD_TYPES = {**WIRE_TYPES, **{c.__name__: c for c in PARTICIPANT_RECORDS + COORDINATOR_RECORDS}}


def record_from_data(name: str, data: dict):
    return from_wire({"type": name, **data}, RECORD_TYPES)


def record_to_data(record) -> dict:
    data = to_wire(record)
    data.pop("type")
    return data


class _Record(Aggregate.Event):
    """A stored protocol record; the class name is the record's name."""

    data: dict

    def apply(self, aggregate) -> None:
        aggregate.fold(record_from_data(type(self).__name__, self.data))


class _RecordLog(Aggregate):
    def record(self, record) -> None:
        self.trigger_event(getattr(type(self), type(record).__name__), data=record_to_data(record))


class PhotoEvent(_RecordLog):
    class Prepared(_Record): ...
    class Refused(_Record): ...
    class Committed(_Record): ...
    class Aborted(_Record): ...
    class VoteCast(_Record): ...
    class Withdrawn(_Record): ...

    def __init__(self, event_id: str):
        self.event_id = event_id
        self.state = event_state.EventState(event_id)

    @staticmethod
    def create_id(event_id: str) -> UUID:
        return UUID(event_id)

    def fold(self, record) -> None:
        self.state = event_state.fold(self.state, record)


class Coordination(_RecordLog):
    class Began(_Record): ...
    class Decided(_Record): ...
    class Acknowledged(_Record): ...
    class Reported(_Record): ...

    def __init__(self, event_id: str):
        self.event_id = event_id
        self.state = coordinator.CoordinatorState(event_id)

    @staticmethod
    def create_id(event_id: str) -> UUID:
        return coordination_id(event_id)

    def fold(self, record) -> None:
        self.state = coordinator.fold(self.state, record)


def coordination_id(event_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"photo-sessions:coordination:{event_id}")
