"""The state of one photo event as one site's participant holds it: a fold of its records."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from domain.messages import AddPhotos, CreateEvent, Payload, PhotoMeta
from domain.records import Aborted, Committed, Prepared, Refused


@dataclass(frozen=True)
class EventState:
    event_id: str
    exists: bool = False
    title: str = ""
    home_site: int | None = None
    created_at: str = ""
    photos: tuple[PhotoMeta, ...] = ()
    prepared: Prepared | None = None  # the lock: at most one transaction prepared per event
    answers: Mapping[str, str | None] = field(default_factory=dict)  # txn -> None (yes) or reason
    outcomes: Mapping[str, bool] = field(default_factory=dict)  # txn -> committed?

    @property
    def version(self) -> int:
        return len(self.photos)

    @property
    def submitters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.submitter for p in self.photos))

    def knows_outcome(self, txn_id: str) -> bool | None:
        """True/False when this site knows how `txn_id` ended (a no vote means abort)."""
        if txn_id in self.outcomes:
            return self.outcomes[txn_id]
        if self.answers.get(txn_id) is not None:
            return False
        return None


def apply_payload(state: EventState, payload: Payload) -> EventState:
    if isinstance(payload, CreateEvent):
        return replace(
            state,
            exists=True,
            title=payload.title,
            home_site=payload.home_site,
            created_at=payload.created_at,
        )
    if isinstance(payload, AddPhotos):
        return replace(state, photos=state.photos + tuple(payload.photos))
    raise TypeError(f"unknown payload {payload!r}")


def fold(state: EventState, record) -> EventState:
    if isinstance(record, Prepared):
        return replace(state, prepared=record, answers={**state.answers, record.txn_id: None})
    if isinstance(record, Refused):
        return replace(state, answers={**state.answers, record.txn_id: record.reason})
    if isinstance(record, Committed):
        if state.prepared is None or state.prepared.txn_id != record.txn_id:
            raise ValueError(f"commit of {record.txn_id} which is not prepared here")
        state = apply_payload(state, state.prepared.payload)
        return replace(state, prepared=None, outcomes={**state.outcomes, record.txn_id: True})
    if isinstance(record, Aborted):
        prepared = state.prepared
        if prepared is not None and prepared.txn_id == record.txn_id:
            prepared = None
        return replace(state, prepared=prepared, outcomes={**state.outcomes, record.txn_id: False})
    raise TypeError(f"not a participant record: {record!r}")


def fold_all(state: EventState, records) -> EventState:
    for record in records:
        state = fold(state, record)
    return state
