"""The coordinator of two-phase commit, as a pure step function.

    step(state, message, config, now) -> Step(state, records, send, timers, reply, finished)

Presumed abort: a transaction without a stored decision after a restart is aborted, and one
this coordinator has no record of is answered "aborted" (`_on_query`: reason "unknown"). So a
create's or an upload's prepares go out while its intention (Began) is being stored, not after
(`Step.send_first`). Should that Began be lost, nothing else ever names the transaction (its id
is drawn at random; its client's request failed with it): after a crash the sites that prepared
it ask, hear "unknown" and abort; after a failed write they are told to abort at once
(`recalled`). A round's start and its collection attempts still store their Began first: an
attempt's id is built, not drawn (a restarted home site begins attempt k again), and a start
answers a round request that is asked again. Once a decision is stored it is resent, with
bounded back-off, until every site has acknowledged it, across restarts.

A transaction that may meet another of its event (an upload, a round's start) is prepared at
the event's home site first and at the others once it voted yes (Begin.first): the home site,
holding one prepared transaction per event, lets one through and refuses the rest before any
other site prepared them. Sent all at once, two sites' transactions could each be prepared
somewhere and refused elsewhere, and both abort. (The specification's network may deliver a
prepare to a site late anyway: this order is one of the behaviours it checks.)

At the event's home site the same actor is the round master (domain.round_master): it decides
when to collect a round's votes, which this coordinator then runs as a Publish transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from domain import round_master
from domain.config import SiteConfig
from domain.evolve import evolve
from domain.messages import (
    Ack,
    AckWaitOver,
    AddPhotos,
    Ballot,
    Begin,
    CollectAgain,
    CreateEvent,
    Decision,
    Outcome,
    Payload,
    Prepare,
    PrepareTimeout,
    Publish,
    Query,
    Recover,
    ResendDecision,
    RoundDeadline,
    StartRound,
    Unreachable,
    Vote,
    VoteReport,
)
from domain.records import Acknowledged, Began, Decided, Reported
from domain.round_master import ActiveRound
from domain.step import Finished, Send, Step, Timer
from domain.vote_tally import PUBLISH, tally

PREPARING, COMMITTED, ABORTED = "preparing", "committed", "aborted"
# Transactions whose prepares go while their Began is being stored (presumed abort, above).
SENT_BEFORE_BEGAN = (CreateEvent, AddPhotos)


@dataclass(frozen=True)
class Txn:
    event_id: str
    payload: Payload
    sites: tuple[int, ...]
    phase: str = PREPARING
    reason: str | None = None
    acks: frozenset[int] = frozenset()  # acknowledgements stored (all at once, when complete)
    heard: frozenset[int] = frozenset()  # volatile: acknowledgements received, not yet stored
    yes: frozenset[int] = frozenset()  # volatile: votes are not stored; a crash aborts anyway
    ballots: tuple[Ballot, ...] = ()  # volatile: what a collection's yes votes carried
    answered: bool = False  # volatile: whether the client has had its answer
    first: int | None = None  # volatile: prepared first, the others once it voted yes (Begin.first)

    @property
    def pending_acks(self) -> tuple[int, ...]:
        return tuple(s for s in self.sites if s not in self.acks and s not in self.heard)


@dataclass(frozen=True)
class CoordinatorState:
    event_id: str
    txns: Mapping[str, Txn] = field(default_factory=dict)
    active: ActiveRound | None = None

    def with_txn(self, txn_id: str, txn: Txn) -> "CoordinatorState":
        return evolve(self, txns={**self.txns, txn_id: txn})


def fold(state: CoordinatorState, record) -> CoordinatorState:
    active = state.active
    if isinstance(record, Reported):
        return evolve(state, active=round_master.reported(active, record.ballot))
    if isinstance(record, Began):
        state = state.with_txn(record.txn_id, Txn(state.event_id, record.payload, record.sites))
        if isinstance(record.payload, Publish) and active is not None:
            state = evolve(state, active=round_master.begun(active, record.payload))
        return state
    txn = state.txns[record.txn_id]
    if isinstance(record, Decided):
        phase = COMMITTED if record.commit else ABORTED
        state = state.with_txn(record.txn_id, evolve(txn, phase=phase, reason=record.reason))
        if isinstance(txn.payload, StartRound) and record.commit:
            state = evolve(state, active=round_master.opened(txn.payload))
        elif isinstance(txn.payload, Publish) and active is not None:
            state = evolve(state, active=round_master.after_collection(active, record.commit, record.reason))
        return state
    if isinstance(record, Acknowledged):
        return state.with_txn(record.txn_id, evolve(txn, acks=txn.acks.union(record.sites)))
    raise TypeError(f"not a coordinator record: {record!r}")


def fold_all(state: CoordinatorState, records) -> CoordinatorState:
    for record in records:
        state = fold(state, record)
    return state


def step(state: CoordinatorState, message, config: SiteConfig, now: float = 0.0) -> Step:
    handler = _HANDLERS.get(type(message))
    if handler is None:
        return Step(state)
    return handler(state, message, config, now)


def _decide(state, txn_id: str, commit: bool, reason: str | None, config, now: float) -> Step:
    txn = state.txns[txn_id]
    if not commit and isinstance(txn.payload, Publish):
        reason = round_master.abort_reason(txn.payload, reason, config, now)
    record = Decided(txn_id, commit, reason)
    state = fold(state, record)
    decision = Decision(txn_id, txn.event_id, commit, reason, txn.payload)
    timers = [Timer(config.timing.backoff(1), ResendDecision(txn_id, 1))]
    finished = ()
    if commit:
        timers.append(Timer(config.timing.ack_wait_s, AckWaitOver(txn_id)))
    else:  # an abort needs no acknowledgement before the client hears of it
        finished = (Finished(txn_id, False, reason),)
        state = state.with_txn(txn_id, evolve(state.txns[txn_id], answered=True))
        if state.active is not None and isinstance(txn.payload, Publish):  # to be retried
            timers.append(round_master.retry_timer(txn.payload, config))
    decided = Step(
        state,
        records=(record,),
        send=tuple(Send(site, decision) for site in txn.sites),
        timers=tuple(timers),
        finished=finished,
    )
    if commit and isinstance(txn.payload, StartRound):
        return round_master.merge(decided, round_master.after_start(state, config, now, _collector(config, now)))
    return decided


def _on_begin(state: CoordinatorState, msg: Begin, config: SiteConfig, now: float) -> Step:
    if msg.txn_id in state.txns:
        return Step(state)
    record = Began(msg.txn_id, msg.payload, tuple(msg.sites))
    prepare = Prepare(msg.txn_id, msg.event_id, config.site, msg.payload)
    state = fold(state, record)
    to = tuple(msg.sites)
    if msg.first in msg.sites and len(msg.sites) > 1:  # the others once it voted yes (_on_vote)
        state = state.with_txn(msg.txn_id, evolve(state.txns[msg.txn_id], first=msg.first))
        to = (msg.first,)
    return Step(
        state,
        records=(record,),
        send=tuple(Send(site, prepare) for site in to),
        timers=(Timer(config.timing.prepare_timeout_s, PrepareTimeout(msg.txn_id)),),
        send_first=isinstance(msg.payload, SENT_BEFORE_BEGAN),
    )


RECALLED = "storage_unavailable"  # the reason of an abort sent for a Began the store refused


def recalled(step: Step) -> tuple[Send, ...]:
    """What to send when a step that sent first (its prepares) failed to store its Began: an
    abort to every site asked to prepare, so none stays locked until it asks (presumed abort:
    an abort needs no stored decision, and this coordinator, which reloads without the Began,
    answers "unknown" from now on). Not stored, not resent: a site that misses it asks."""
    if not step.send_first:
        return ()
    return tuple(Send(s.site, Decision(s.message.txn_id, s.message.event_id, False, RECALLED, s.message.payload))
                 for s in step.send if isinstance(s.message, Prepare))


def _collector(config: SiteConfig, now: float):
    """Begin the next collection attempt of the active round (for domain.round_master)."""

    def collect(state: CoordinatorState) -> Step:
        txn_id, payload = state.active.next_attempt(config.site)
        return _on_begin(state, Begin(txn_id, state.event_id, payload, config.sites), config, now)

    return collect


def _preparing(state: CoordinatorState, txn_id: str) -> Txn | None:
    txn = state.txns.get(txn_id)
    return txn if txn is not None and txn.phase == PREPARING else None


def _on_vote(state: CoordinatorState, msg: Vote, config: SiteConfig, now: float) -> Step:
    txn = _preparing(state, msg.txn_id)
    if txn is None or msg.site not in txn.sites or msg.site in txn.yes:
        return Step(state)
    if not msg.yes:
        return _decide(state, msg.txn_id, False, msg.reason or "refused", config, now)
    txn = evolve(txn, yes=txn.yes | {msg.site}, ballots=txn.ballots + tuple(msg.ballots))
    state = state.with_txn(msg.txn_id, txn)
    if txn.yes != set(txn.sites):
        if msg.site == txn.first:  # the site asked first is prepared: now every other one
            prepare = Prepare(msg.txn_id, txn.event_id, config.site, txn.payload)
            return Step(state, send=tuple(Send(site, prepare) for site in txn.sites if site != txn.first))
        return Step(state)
    if isinstance(txn.payload, Publish):
        p = txn.payload
        verdict, reason = tally(p.submitters, txn.ballots, p.deadline, final=True)
        return _decide(state, msg.txn_id, verdict == PUBLISH, reason, config, now)
    return _decide(state, msg.txn_id, True, None, config, now)


def _on_unreachable(state: CoordinatorState, msg: Unreachable, config, now) -> Step:
    if isinstance(msg.request, Prepare) and _preparing(state, msg.request.txn_id):
        return _decide(state, msg.request.txn_id, False, "unreachable", config, now)
    return Step(state)  # an undelivered decision is resent by its timer


def _on_prepare_timeout(state: CoordinatorState, msg: PrepareTimeout, config, now) -> Step:
    if _preparing(state, msg.txn_id):
        return _decide(state, msg.txn_id, False, "unreachable", config, now)
    return Step(state)


def _on_ack(state: CoordinatorState, msg: Ack, config: SiteConfig, now: float) -> Step:
    """Acknowledgements are kept in memory until the last one, then stored together (one
    record naming the sites, not one per site); one lost in a crash only means the decision is
    resent."""
    txn = state.txns.get(msg.txn_id)
    if txn is None or txn.phase == PREPARING or msg.site not in txn.pending_acks:
        return Step(state)
    txn = evolve(txn, heard=txn.heard | {msg.site})
    state = state.with_txn(msg.txn_id, txn)
    if txn.pending_acks:
        return Step(state)
    records = (Acknowledged(msg.txn_id, tuple(site for site in txn.sites if site not in txn.acks)),)
    state = fold_all(state, records)
    if txn.answered or txn.phase != COMMITTED:  # an abort was reported when it was decided
        return Step(state, records=records)
    state = state.with_txn(msg.txn_id, evolve(state.txns[msg.txn_id], answered=True))
    # The client hears before the acknowledgements are stored: every site stored the commit
    # before it acknowledged, so "durable on every site" already holds; the record only stops
    # the resends. One forced write off the client's wait.
    return Step(state, records=records, finished=(Finished(msg.txn_id, True, None),), finished_first=True)


def _resend(state: CoordinatorState, txn_id: str, attempt: int, config) -> Step:
    txn = state.txns.get(txn_id)
    if txn is None or txn.phase == PREPARING or not txn.pending_acks:
        return Step(state)
    decision = Decision(txn_id, txn.event_id, txn.phase == COMMITTED, txn.reason, txn.payload)
    return Step(
        state,
        send=tuple(Send(site, decision) for site in txn.pending_acks),
        timers=(Timer(config.timing.backoff(attempt + 1), ResendDecision(txn_id, attempt + 1)),),
    )


def _on_resend(state: CoordinatorState, msg: ResendDecision, config, now) -> Step:
    return _resend(state, msg.txn_id, msg.attempt, config)


def _on_ack_wait_over(state: CoordinatorState, msg: AckWaitOver, config, now) -> Step:
    """The commit is durable everywhere (every site prepared it); stop holding the client."""
    txn = state.txns.get(msg.txn_id)
    if txn is None or txn.phase != COMMITTED or txn.answered:
        return Step(state)
    state = state.with_txn(msg.txn_id, evolve(txn, answered=True))
    return Step(state, finished=(Finished(msg.txn_id, True, None),))


def _on_query(state: CoordinatorState, msg: Query, config: SiteConfig, now: float) -> Step:
    txn = state.txns.get(msg.txn_id)
    if txn is None:  # presumed abort: no intention stored means no prepare was ever sent
        answer = Outcome(msg.txn_id, state.event_id, config.site, False, "unknown")
    elif txn.phase == PREPARING:
        answer = Outcome(msg.txn_id, state.event_id, config.site, None)
    else:
        answer = Outcome(msg.txn_id, state.event_id, config.site, txn.phase == COMMITTED,
                         txn.reason, txn.payload)
    return Step(state, reply=answer)


def _on_vote_report(state: CoordinatorState, msg: VoteReport, config, now) -> Step:
    return round_master.on_vote_report(state, msg, config, _collector(config, now))


def _on_round_deadline(state: CoordinatorState, msg: RoundDeadline, config, now) -> Step:
    return round_master.on_round_deadline(state, msg, config, _collector(config, now))


def _on_collect_again(state: CoordinatorState, msg: CollectAgain, config, now) -> Step:
    return round_master.on_collect_again(state, msg, config, _collector(config, now))


def _on_recover(state: CoordinatorState, msg: Recover, config: SiteConfig, now: float) -> Step:
    """After a restart: abort what was never decided (a collection attempt is retried), resend
    what is not yet acknowledged, and let the round master pick up a round still open."""
    steps = [Step(state)]
    for txn_id, txn in state.txns.items():
        state = steps[-1].state
        if txn.phase == PREPARING:
            steps.append(_decide(state, txn_id, False, "coordinator_restarted", config, now))
        else:
            steps.append(_resend(state, txn_id, 0, config))
    state = steps[-1].state
    steps.append(round_master.recover(state, config, now, _collector(config, now)))
    return round_master.merge(*steps)


_HANDLERS = {
    Begin: _on_begin,
    Vote: _on_vote,
    Unreachable: _on_unreachable,
    PrepareTimeout: _on_prepare_timeout,
    Ack: _on_ack,
    ResendDecision: _on_resend,
    AckWaitOver: _on_ack_wait_over,
    Query: _on_query,
    VoteReport: _on_vote_report,
    RoundDeadline: _on_round_deadline,
    CollectAgain: _on_collect_again,
    Recover: _on_recover,
}


def timer_obsolete(state: CoordinatorState, message) -> bool:
    """Whether a timer due now would change nothing in `state` or in any later state rebuilt
    from the store (so a site may drop it rather than start an actor for it). Each test holds
    for good once true: decisions, stored acknowledgements and closed rounds are final."""
    if isinstance(message, PrepareTimeout):
        return _preparing(state, message.txn_id) is None
    if isinstance(message, ResendDecision):
        txn = state.txns.get(message.txn_id)
        return txn is None or (txn.phase != PREPARING and set(txn.sites) <= txn.acks)
    if isinstance(message, AckWaitOver):  # only a client waiting in memory cares
        txn = state.txns.get(message.txn_id)
        return txn is None or txn.phase != COMMITTED or txn.answered
    return round_master.timer_obsolete(state.active, message)
