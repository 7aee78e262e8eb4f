"""The state of one photo event as one site's participant holds it: a fold of its records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from domain.evolve import evolve
from domain.messages import RETRY, AddPhotos, Ballot, CreateEvent, Payload, PhotoMeta, Publish, StartRound
from domain.records import Aborted, Committed, Prepared, Refused, VoteCast, Withdrawn


@dataclass(frozen=True)
class Round:
    round: int
    version: int
    deadline: float
    submitters: tuple[str, ...]
    ballots: Mapping[str, Ballot] = field(default_factory=dict)  # cast here, and the opening accept
    request: str = ""  # the accept that asked for the round (its ballot opens `ballots`)

    @property
    def accepted(self) -> int:
        return sum(b.decision == "accept" for b in self.ballots.values())


@dataclass(frozen=True)
class RoundOutcome:
    round: int
    outcome: str  # "published" or "aborted"
    reason: str | None


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
    reasons: Mapping[str, str | None] = field(default_factory=dict)  # txn -> why it aborted
    round: Round | None = None  # the voting round running here, if any
    rounds: int = 0  # rounds started so far
    ended: frozenset[int] = frozenset()  # rounds whose collection was decided (here or not yet open)
    last_outcome: RoundOutcome | None = None
    published_version: int | None = None
    started: Mapping[str, StartRound] = field(default_factory=dict)  # request -> the round it opened
    withdrawn: frozenset[str] = frozenset()  # round requests given up here: refused for good
    # Every vote kept here, by (person, time cast) -> (round, deadline, decision): a copy of a
    # vote forwarded here is answered as the vote was, even after its round ended.
    recorded: Mapping[tuple[str, float], tuple[int, float, str]] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return len(self.photos)

    @property
    def submitters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.submitter for p in self.photos))

    @property
    def published(self) -> bool:
        return self.published_version is not None

    @property
    def collecting(self) -> bool:
        """Voting is closed here: this site has answered the round's collection."""
        return self.prepared is not None and isinstance(self.prepared.payload, Publish)

    @property
    def phase(self) -> str:
        if self.published:
            return "published"
        return "voting" if self.round is not None else "open"

    def knows_outcome(self, txn_id: str) -> bool | None:
        """True/False when this site knows how `txn_id` ended (a no vote means abort)."""
        if txn_id in self.outcomes:
            return self.outcomes[txn_id]
        if self.answers.get(txn_id) is not None:
            return False
        return None


_NOTHING_YET = EventState("")


def initial(event_id: str) -> EventState:
    """The state of an event nothing is known of yet: as `EventState(event_id)`, in a third of
    its time (the dataclass's __init__ sets 18 fields one by one; every actor a site starts for
    a new event makes one). Its mappings are new ones, as the constructor's are."""
    return evolve(_NOTHING_YET, event_id=event_id, answers={}, outcomes={}, reasons={}, started={},
                  recorded={})


def apply_commit(state: EventState, payload: Payload) -> EventState:
    if isinstance(payload, CreateEvent):
        return evolve(state, exists=True, title=payload.title, home_site=payload.home_site,
                       created_at=payload.created_at)
    if isinstance(payload, AddPhotos):
        return evolve(state, photos=state.photos + tuple(payload.photos))
    if isinstance(payload, StartRound):
        state = evolve(state, rounds=max(state.rounds, payload.round))
        if payload.request:
            state = evolve(state, started={**state.started, payload.request: payload})
        if payload.round in state.ended:  # its collection's abort overtook the start: already over
            return state
        ballots = {payload.ballot.user: payload.ballot} if payload.ballot else {}
        if payload.ballot:
            state = _recorded(state, payload.ballot, payload.round, payload.deadline)
        current = Round(payload.round, payload.version, payload.deadline, payload.submitters,
                        ballots, payload.request)
        return evolve(state, round=current)
    if isinstance(payload, Publish):
        return evolve(state, round=None, published_version=payload.version,
                       ended=state.ended | {payload.round},
                       last_outcome=RoundOutcome(payload.round, "published", None))
    raise TypeError(f"unknown payload {payload!r}")


def apply_abort(state: EventState, payload: Payload | None, reason: str | None) -> EventState:
    """An aborted collection ends its round, even one not yet open here (the abort may overtake
    the round's start), unless it is to be retried (RETRY: the round goes on, and voting is open
    again here until its deadline); other aborted transactions change nothing."""
    if not isinstance(payload, Publish) or payload.round in state.ended or reason == RETRY:
        return state
    # A collection that failed for any other reason failed to reach every site in time.
    shown = reason if reason in ("rejected", "timeout") else "unreachable"
    state = evolve(state, ended=state.ended | {payload.round})
    if state.round is not None and state.round.round != payload.round:
        return state  # another round runs here: this one is remembered as over, nothing more
    if state.last_outcome is not None and state.last_outcome.round > payload.round:
        return state
    return evolve(state, round=None, last_outcome=RoundOutcome(payload.round, "aborted", shown))


def fold(state: EventState, record) -> EventState:
    if isinstance(record, Prepared):
        return evolve(state, prepared=record, answers={**state.answers, record.txn_id: None})
    if isinstance(record, Refused):
        return evolve(state, answers={**state.answers, record.txn_id: record.reason})
    if isinstance(record, Committed):
        if state.prepared is None or state.prepared.txn_id != record.txn_id:
            raise ValueError(f"commit of {record.txn_id} which is not prepared here")
        state = apply_commit(state, state.prepared.payload)
        return evolve(state, prepared=None, outcomes={**state.outcomes, record.txn_id: True})
    if isinstance(record, Aborted):
        payload = record.payload
        prepared = state.prepared
        if prepared is not None and prepared.txn_id == record.txn_id:
            payload, prepared = prepared.payload, None
        state = apply_abort(state, payload, record.reason)
        return evolve(state, prepared=prepared, outcomes={**state.outcomes, record.txn_id: False},
                       reasons={**state.reasons, record.txn_id: record.reason})
    if isinstance(record, VoteCast):
        current = state.round
        if current is None or current.round != record.round:
            raise ValueError(f"vote for round {record.round}, which is not running here")
        ballots = {**current.ballots, record.ballot.user: record.ballot}
        state = _recorded(state, record.ballot, current.round, current.deadline)
        return evolve(state, round=evolve(current, ballots=ballots))
    if isinstance(record, Withdrawn):
        return evolve(state, withdrawn=state.withdrawn | {record.request})
    raise TypeError(f"not a participant record: {record!r}")


def _recorded(state: EventState, ballot: Ballot, round_number: int, deadline: float) -> EventState:
    kept = (round_number, deadline, ballot.decision)
    return evolve(state, recorded={**state.recorded, (ballot.user, ballot.at): kept})


def fold_all(state: EventState, records) -> EventState:
    for record in records:
        state = fold(state, record)
    return state
