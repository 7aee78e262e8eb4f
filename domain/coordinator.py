"""The coordinator of two-phase commit, as a pure step function.

    step(state, message, config) -> Step(state, records, send, timers, reply, finished)

Presumed abort: the intention (Began) is stored before any prepare goes out; a transaction
without a stored decision after a restart is aborted. Once a decision is stored it is resent,
with bounded back-off, until every site has acknowledged it, across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from domain.config import SiteConfig
from domain.messages import (
    Ack,
    AckWaitOver,
    Begin,
    Decision,
    Outcome,
    Payload,
    Prepare,
    PrepareTimeout,
    Query,
    Recover,
    ResendDecision,
    Unreachable,
    Vote,
)
from domain.records import Acknowledged, Began, Decided
from domain.step import Finished, Send, Step, Timer

PREPARING, COMMITTED, ABORTED = "preparing", "committed", "aborted"


@dataclass(frozen=True)
class Txn:
    event_id: str
    payload: Payload
    sites: tuple[int, ...]
    phase: str = PREPARING
    reason: str | None = None
    acks: frozenset[int] = frozenset()
    yes: frozenset[int] = frozenset()  # volatile: votes are not stored; a crash aborts anyway
    answered: bool = False  # volatile: whether the client has had its answer

    @property
    def pending_acks(self) -> tuple[int, ...]:
        return tuple(s for s in self.sites if s not in self.acks)


@dataclass(frozen=True)
class CoordinatorState:
    event_id: str
    txns: Mapping[str, Txn] = field(default_factory=dict)

    def with_txn(self, txn_id: str, txn: Txn) -> "CoordinatorState":
        return replace(self, txns={**self.txns, txn_id: txn})


def fold(state: CoordinatorState, record) -> CoordinatorState:
    if isinstance(record, Began):
        return state.with_txn(record.txn_id, Txn(state.event_id, record.payload, record.sites))
    txn = state.txns[record.txn_id]
    if isinstance(record, Decided):
        phase = COMMITTED if record.commit else ABORTED
        return state.with_txn(record.txn_id, replace(txn, phase=phase, reason=record.reason))
    if isinstance(record, Acknowledged):
        return state.with_txn(record.txn_id, replace(txn, acks=txn.acks | {record.site}))
    raise TypeError(f"not a coordinator record: {record!r}")


def fold_all(state: CoordinatorState, records) -> CoordinatorState:
    for record in records:
        state = fold(state, record)
    return state


def step(state: CoordinatorState, message, config: SiteConfig) -> Step[CoordinatorState]:
    handler = _HANDLERS.get(type(message))
    if handler is None:
        return Step(state)
    return handler(state, message, config)


def _decide(state, txn_id: str, commit: bool, reason: str | None, config) -> Step:
    txn = state.txns[txn_id]
    record = Decided(txn_id, commit, reason)
    state = fold(state, record)
    decision = Decision(txn_id, txn.event_id, commit)
    timers = [Timer(config.timing.backoff(1), ResendDecision(txn_id, 1))]
    finished = ()
    if commit:
        timers.append(Timer(config.timing.ack_wait_s, AckWaitOver(txn_id)))
    else:  # an abort needs no acknowledgement before the client hears of it
        finished = (Finished(txn_id, False, reason),)
        state = state.with_txn(txn_id, replace(state.txns[txn_id], answered=True))
    return Step(
        state,
        records=(record,),
        send=tuple(Send(site, decision) for site in txn.sites),
        timers=tuple(timers),
        finished=finished,
    )


def _on_begin(state: CoordinatorState, msg: Begin, config: SiteConfig) -> Step:
    if msg.txn_id in state.txns:
        return Step(state)
    record = Began(msg.txn_id, msg.payload, tuple(msg.sites))
    prepare = Prepare(msg.txn_id, msg.event_id, config.site, msg.payload)
    return Step(
        fold(state, record),
        records=(record,),
        send=tuple(Send(site, prepare) for site in msg.sites),
        timers=(Timer(config.timing.prepare_timeout_s, PrepareTimeout(msg.txn_id)),),
    )


def _preparing(state: CoordinatorState, txn_id: str) -> Txn | None:
    txn = state.txns.get(txn_id)
    return txn if txn is not None and txn.phase == PREPARING else None


def _on_vote(state: CoordinatorState, msg: Vote, config: SiteConfig) -> Step:
    txn = _preparing(state, msg.txn_id)
    if txn is None or msg.site not in txn.sites:
        return Step(state)
    if not msg.yes:
        return _decide(state, msg.txn_id, False, msg.reason or "refused", config)
    txn = replace(txn, yes=txn.yes | {msg.site})
    state = state.with_txn(msg.txn_id, txn)
    if txn.yes == set(txn.sites):
        return _decide(state, msg.txn_id, True, None, config)
    return Step(state)


def _on_unreachable(state: CoordinatorState, msg: Unreachable, config: SiteConfig) -> Step:
    if isinstance(msg.request, Prepare) and _preparing(state, msg.request.txn_id):
        return _decide(state, msg.request.txn_id, False, "unreachable", config)
    return Step(state)  # an undelivered decision is resent by its timer


def _on_prepare_timeout(state: CoordinatorState, msg: PrepareTimeout, config) -> Step:
    if _preparing(state, msg.txn_id):
        return _decide(state, msg.txn_id, False, "unreachable", config)
    return Step(state)


def _on_ack(state: CoordinatorState, msg: Ack, config: SiteConfig) -> Step:
    txn = state.txns.get(msg.txn_id)
    if txn is None or txn.phase == PREPARING or msg.site in txn.acks or msg.site not in txn.sites:
        return Step(state)
    record = Acknowledged(msg.txn_id, msg.site)
    state = fold(state, record)
    txn = state.txns[msg.txn_id]
    if txn.pending_acks or txn.answered:
        return Step(state, records=(record,))
    state = state.with_txn(msg.txn_id, replace(txn, answered=True))
    return Step(state, records=(record,), finished=(Finished(msg.txn_id, True, None),))


def _resend(state: CoordinatorState, txn_id: str, attempt: int, config) -> Step:
    txn = state.txns.get(txn_id)
    if txn is None or txn.phase == PREPARING or not txn.pending_acks:
        return Step(state)
    decision = Decision(txn_id, txn.event_id, txn.phase == COMMITTED)
    return Step(
        state,
        send=tuple(Send(site, decision) for site in txn.pending_acks),
        timers=(Timer(config.timing.backoff(attempt + 1), ResendDecision(txn_id, attempt + 1)),),
    )


def _on_resend(state: CoordinatorState, msg: ResendDecision, config) -> Step:
    return _resend(state, msg.txn_id, msg.attempt, config)


def _on_ack_wait_over(state: CoordinatorState, msg: AckWaitOver, config) -> Step:
    """The commit is durable everywhere (every site prepared it); stop holding the client."""
    txn = state.txns.get(msg.txn_id)
    if txn is None or txn.phase != COMMITTED or txn.answered:
        return Step(state)
    state = state.with_txn(msg.txn_id, replace(txn, answered=True))
    return Step(state, finished=(Finished(msg.txn_id, True, None),))


def _on_query(state: CoordinatorState, msg: Query, config: SiteConfig) -> Step:
    txn = state.txns.get(msg.txn_id)
    if txn is None:
        commit = False  # presumed abort: no intention stored means no prepare was ever sent
    elif txn.phase == PREPARING:
        commit = None
    else:
        commit = txn.phase == COMMITTED
    return Step(state, reply=Outcome(msg.txn_id, state.event_id, config.site, commit))


def _on_recover(state: CoordinatorState, msg: Recover, config: SiteConfig) -> Step:
    """After a restart: abort what was never decided, resend what is not yet acknowledged."""
    records, sends, timers, finished = [], [], [], []
    for txn_id, txn in state.txns.items():
        if txn.phase == PREPARING:
            result = _decide(state, txn_id, False, "coordinator_restarted", config)
        else:
            result = _resend(state, txn_id, 0, config)
        state = result.state
        records += result.records
        sends += result.send
        timers += result.timers
        finished += result.finished
    return Step(state, tuple(records), tuple(sends), tuple(timers), finished=tuple(finished))


_HANDLERS = {
    Begin: _on_begin,
    Vote: _on_vote,
    Unreachable: _on_unreachable,
    PrepareTimeout: _on_prepare_timeout,
    Ack: _on_ack,
    ResendDecision: _on_resend,
    AckWaitOver: _on_ack_wait_over,
    Query: _on_query,
    Recover: _on_recover,
}
