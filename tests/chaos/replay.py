"""One event's stored logs, replayed site by site, in the shape the invariants need."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from domain.event_state import EventState, fold
from domain.messages import Payload, Publish, StartRound
from domain.records import Aborted, Acknowledged, Began, Committed, Decided, Prepared, VoteCast


@dataclass(frozen=True)
class Step:
    """A participant record with the state before it and, for an outcome, what it concerned."""

    before: EventState
    record: object
    payload: Payload | None = None


@dataclass
class SiteLog:
    site: int
    participant: list = field(default_factory=list)  # records, in stored order
    coordinator: list = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    final: EventState | None = None
    error: str | None = None  # the log does not replay
    began_at: dict[str, float] = field(default_factory=dict)  # txn -> when Began was stored (epoch)

    def committed(self, kind: type | None = None) -> Iterator[tuple[str, Payload]]:
        """(txn, payload) of every transaction committed here, in order."""
        for s in self.steps:
            if isinstance(s.record, Committed) and (kind is None or isinstance(s.payload, kind)):
                yield s.record.txn_id, s.payload

    def aborted(self, kind: type | None = None) -> Iterator[tuple[Aborted, Payload | None]]:
        for s in self.steps:
            if isinstance(s.record, Aborted) and (kind is None or isinstance(s.payload, kind)):
                yield s.record, s.payload

    def ballots(self) -> Iterator[tuple[int, object]]:
        """(round, ballot) of every vote cast at this site: stored as cast, or the accept a
        round opened with (its commit records it)."""
        for s in self.steps:
            if isinstance(s.record, VoteCast):
                yield s.record.round, s.record.ballot
            elif (isinstance(s.record, Committed) and isinstance(s.payload, StartRound)
                  and s.payload.ballot is not None and s.payload.ballot.site == self.site):
                yield s.payload.round, s.payload.ballot

    def began(self) -> dict[str, Began]:
        return {r.txn_id: r for r in self.coordinator if isinstance(r, Began)}

    def decided(self) -> dict[str, Decided]:
        return {r.txn_id: r for r in self.coordinator if isinstance(r, Decided)}

    def acknowledged(self) -> dict[str, set[int]]:
        acks: dict[str, set[int]] = {}
        for r in self.coordinator:
            if isinstance(r, Acknowledged):
                acks.setdefault(r.txn_id, set()).update(r.sites)
        return acks


def replay(event_id: str, site: int, entries) -> SiteLog:
    """entries: LogEntry-like objects (role, record) in stored order."""
    log = SiteLog(site)
    for e in entries:
        if e.record is None:
            continue
        (log.participant if e.role == "participant" else log.coordinator).append(e.record)
        if isinstance(e.record, Began):
            log.began_at[e.record.txn_id] = e.at.timestamp()
    state, prepared = EventState(event_id), {}
    for record in log.participant:
        payload = None
        if isinstance(record, Prepared):
            prepared[record.txn_id] = record.payload
        elif isinstance(record, Committed):
            payload = prepared.get(record.txn_id)
        elif isinstance(record, Aborted):
            payload = prepared.get(record.txn_id, record.payload)
        log.steps.append(Step(state, record, payload))
        try:
            state = fold(state, record)
        except (ValueError, TypeError, KeyError) as e:
            log.error = f"{type(record).__name__} does not apply: {e}"
            break
    log.final = state
    return log


def rounds_started(logs: dict[int, SiteLog]) -> dict[int, dict[str, StartRound]]:
    """round -> {txn: StartRound} over every site (one txn per round, or something is wrong)."""
    found: dict[int, dict[str, StartRound]] = {}
    for log in logs.values():
        for txn, payload in log.committed(StartRound):
            found.setdefault(payload.round, {})[txn] = payload
    return found


def collections(logs: dict[int, SiteLog]) -> dict[str, tuple[Publish, Decided | None]]:
    """Every collection a home site began: txn -> (payload, its decision if stored)."""
    found = {}
    for log in logs.values():
        decided = log.decided()
        for txn, began in log.began().items():
            if isinstance(began.payload, Publish):
                found[txn] = (began.payload, decided.get(txn))
    return found
