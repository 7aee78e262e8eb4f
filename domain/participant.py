"""The participant of two-phase commit, as a pure step function.

    step(state, message, config, now) -> Step(state, records, send, timers, reply)

A participant votes yes only when the rules admit the payload (domain.admission) and its site
holds every file the payload names (the site says which it lacks: CheckedPrepare), stores its
vote before answering, answers duplicates with the answer it gave first, and once it has voted
yes never decides alone: in doubt, it asks the coordinator and its peers. It also keeps the
votes of the people whose ballot site this is: stored before the answer, final, and reported to
the home site until it acknowledges them.
"""

from __future__ import annotations

from domain.admission import ALREADY_CAST, refusal_reason, vote_refusal
from domain.config import SiteConfig
from domain.event_state import EventState, fold_all
from domain.messages import (
    Ack,
    AskOutcome,
    Ballot,
    CastVote,
    CheckedPrepare,
    Decision,
    Outcome,
    Prepare,
    RETRY,
    ROUND_ENDINGS,
    Publish,
    Query,
    Recover,
    ReportAck,
    ReportAgain,
    Unreachable,
    IN_DOUBT,
    STARTED,
    WITHDRAWN,
    StartRound,
    Vote,
    VoteAnswer,
    VoteReport,
    Withdraw,
)
from domain.records import Aborted, Committed, Prepared, Refused, VoteCast, Withdrawn
from domain.step import Alarm, Send, Step, Timer


def step(state: EventState, message, config: SiteConfig, now: float = 0.0) -> Step[EventState]:
    handler = _HANDLERS.get(type(message))
    if handler is None:
        return Step(state)
    return handler(state, message, config)


def _stored(state, records, **effects) -> Step[EventState]:
    return Step(fold_all(state, records), records=tuple(records), **effects)


def _on_checked_prepare(state: EventState, msg: CheckedPrepare, config: SiteConfig):
    return _on_prepare(state, msg.prepare, config, msg.missing)


def _on_prepare(state: EventState, msg: Prepare, config: SiteConfig,
                missing: tuple[str, ...] = ()) -> Step[EventState]:
    """`missing`: the files the payload names that this site does not hold (a yes needs all)."""

    def vote(yes: bool, reason: str | None = None, ballots=()) -> Vote:
        return Vote(msg.txn_id, state.event_id, config.site, yes, reason, tuple(ballots))

    def ballots_for(s: EventState):
        if isinstance(msg.payload, Publish) and s.round is not None:
            return sorted(s.round.ballots.values(), key=lambda b: (b.at, b.user))
        return ()

    if msg.txn_id in state.answers:  # a duplicate: the same answer as the first time
        reason = state.answers[msg.txn_id]
        return Step(state, reply=vote(reason is None, reason, ballots_for(state)))
    if msg.txn_id in state.outcomes:  # the abort overtook the prepare
        return Step(state, reply=vote(False, "aborted"))
    implied = _start_implied_by(state, msg) or _attempt_superseded(state, msg)
    current = fold_all(state, implied)
    reason = refusal_reason(current, msg.payload, config, missing)
    if reason is not None:
        return _stored(state, [*implied, Refused(msg.txn_id, msg.coordinator, reason)],
                       reply=vote(False, reason))
    return _stored(
        state,
        [*implied, Prepared(msg.txn_id, msg.coordinator, msg.payload)],
        reply=vote(True, None, ballots_for(current)),
        timers=(Timer(config.timing.in_doubt_s, AskOutcome(msg.txn_id, 1)),),
    )


def _start_implied_by(state: EventState, msg: Prepare) -> list:
    """The records that apply a StartRound whose commit the prepare `msg` proves.

    A home site begins the collection of round r only after the StartRound of round r committed,
    and that commit needed this site's yes; this site holds one prepared transaction at a time,
    so if it still holds a StartRound of round r from that home site (and has started no round
    r), that is the one that committed. Its decision may simply not have arrived yet: refusing
    the collection for that would throw the round away."""
    prepared = state.prepared
    if (isinstance(msg.payload, Publish) and prepared is not None
            and isinstance(prepared.payload, StartRound)
            and prepared.payload.round == msg.payload.round
            and prepared.coordinator == msg.coordinator and state.rounds < msg.payload.round):
        return [Committed(prepared.txn_id)]
    return []


def _attempt_superseded(state: EventState, msg: Prepare) -> list:
    """The records that abort a collection attempt that the prepare `msg` proves was retried.

    The home site begins attempt k+1 of a round only after it decided attempt k's abort as a
    retry (domain.round_master); so a site still holding attempt k of that round from that home
    site prepared may apply that abort now, instead of refusing the new attempt as a conflict."""
    prepared = state.prepared
    if (isinstance(msg.payload, Publish) and prepared is not None
            and isinstance(prepared.payload, Publish)
            and prepared.payload.round == msg.payload.round
            and prepared.coordinator == msg.coordinator
            and prepared.payload.attempt < msg.payload.attempt):
        return [Aborted(prepared.txn_id, RETRY)]
    return []


def _conclude(state: EventState, txn_id: str, commit: bool, reason=None, payload=None) -> list:
    """The records that apply a known outcome here (none if it is already applied); a commit
    only of the transaction prepared here."""
    if txn_id in state.outcomes:
        return []
    return [Committed(txn_id)] if commit else [Aborted(txn_id, reason, payload)]


def _on_decision(state: EventState, msg: Decision, config: SiteConfig) -> Step[EventState]:
    problem = _cannot_apply(state, msg.txn_id, msg.commit)
    if problem is not None:
        # Acknowledging would let the sites diverge in silence: no Ack (the coordinator keeps
        # resending), and an alarm for a person to see.
        return Step(state, alarms=(Alarm(state.event_id, msg.txn_id, problem),))
    ack = Ack(msg.txn_id, state.event_id, config.site)
    records = _conclude(state, msg.txn_id, msg.commit, msg.reason, msg.payload)
    return _stored(state, records, reply=ack)


def _cannot_apply(state: EventState, txn_id: str, commit: bool) -> str | None:
    """Why a decision cannot be applied here, or None if it can (or already was)."""
    if txn_id in state.outcomes:
        if state.outcomes[txn_id] == commit:
            return None
        return ("told to commit a transaction this site has aborted" if commit
                else "told to abort a transaction this site has committed")
    if not commit or (state.prepared is not None and state.prepared.txn_id == txn_id):
        return None
    if state.answers.get(txn_id) is not None:
        return "told to commit a transaction this site refused"
    return "told to commit a transaction this site never prepared"


def _on_outcome(state: EventState, msg: Outcome, config: SiteConfig) -> Step[EventState]:
    if msg.commit is None or state.prepared is None or state.prepared.txn_id != msg.txn_id:
        return Step(state)
    if (msg.commit is False and isinstance(state.prepared.payload, Publish)
            and msg.reason != RETRY and msg.reason not in ROUND_ENDINGS):
        # A peer that refused a collection attempt knows it aborted, not whether the round
        # ends or is retried: only the home site's decision says, so keep asking.
        return Step(state)
    return _stored(state, _conclude(state, msg.txn_id, msg.commit, msg.reason, msg.payload))


def _on_query(state: EventState, msg: Query, config: SiteConfig) -> Step[EventState]:
    known = state.knows_outcome(msg.txn_id)
    reason = state.reasons.get(msg.txn_id) or state.answers.get(msg.txn_id)
    return Step(state, reply=Outcome(msg.txn_id, state.event_id, config.site, known,
                                     reason if known is False else None))


def _ask_around(state: EventState, txn_id: str, attempt: int, config: SiteConfig):
    prepared = state.prepared
    if prepared is None or prepared.txn_id != txn_id:
        return Step(state)
    query = Query(txn_id, state.event_id, config.site, prepared.coordinator)
    # The coordinator knows for sure (it may be this very site); any peer may have heard.
    asked = dict.fromkeys((prepared.coordinator, *config.peers))
    return Step(
        state,
        send=tuple(Send(site, query) for site in asked),
        timers=(Timer(config.timing.backoff(attempt) + config.timing.in_doubt_s,
                      AskOutcome(txn_id, attempt + 1)),),
    )


def _on_ask_outcome(state: EventState, msg: AskOutcome, config: SiteConfig):
    return _ask_around(state, msg.txn_id, msg.attempt, config)


def _on_recover(state: EventState, msg: Recover, config: SiteConfig):
    if state.prepared is None:
        return Step(state)
    return _ask_around(state, state.prepared.txn_id, 1, config)


def _on_unreachable(state: EventState, msg: Unreachable, config: SiteConfig):
    """A report that got no acknowledgement is sent again later; a query that got no answer is
    covered by its own timer."""
    report = msg.request
    if isinstance(report, VoteReport):
        return Step(state, timers=(Timer(config.timing.backoff(report.attempt + 1),
                                         ReportAgain(report.round, report.ballot.user, report.attempt + 1)),))
    return Step(state)


def _on_report_again(state: EventState, msg: ReportAgain, config: SiteConfig):
    ballot = _reportable(state, msg.round, msg.user)
    if ballot is None:
        return Step(state)
    return Step(state, send=(Send(state.home_site, VoteReport(state.event_id, msg.round, ballot, msg.attempt)),))


def _reportable(state: EventState, round_number: int, user: str) -> Ballot | None:
    """The vote of `user` stored here in round `round_number`, while that round runs here."""
    current = state.round
    if current is None or current.round != round_number:
        return None
    return current.ballots.get(user)


def _on_report_ack(state: EventState, msg: ReportAck, config: SiteConfig):
    return Step(state)  # the home site stored the report: nothing more to send


def _on_cast_vote(state: EventState, msg: CastVote, config: SiteConfig):
    reason = vote_refusal(state, msg, config.site)
    if reason == ALREADY_CAST:  # a copy of a vote kept here: the same answer again
        round_number, deadline, _ = state.recorded[(msg.user, msg.at)]
        return Step(state, reply=VoteAnswer(round_number, deadline))
    if reason is not None:
        return Step(state, reply=VoteAnswer(None, None, reason))
    current = state.round
    ballot = Ballot(msg.user, msg.decision, msg.at, config.site)
    return _stored(
        state,
        [VoteCast(current.round, ballot)],
        reply=VoteAnswer(current.round, current.deadline),
        send=(Send(state.home_site, VoteReport(state.event_id, current.round, ballot)),),
    )


def _on_withdraw(state: EventState, msg: Withdraw, config: SiteConfig):
    """Give up a round request unless it is settled here; once stored, its StartRound is refused
    here, so it can never commit (every site must vote yes) and the voter may say so."""
    prepared = state.prepared
    if (prepared is not None and isinstance(prepared.payload, StartRound)
            and prepared.payload.request == msg.request):
        return Step(state, reply=IN_DOUBT)
    if msg.request in state.started:
        return Step(state, reply=STARTED)
    if msg.request in state.withdrawn:
        return Step(state, reply=WITHDRAWN)
    return _stored(state, [Withdrawn(msg.request)], reply=WITHDRAWN)


_HANDLERS = {
    Prepare: _on_prepare,
    CheckedPrepare: _on_checked_prepare,
    Decision: _on_decision,
    Outcome: _on_outcome,
    Query: _on_query,
    AskOutcome: _on_ask_outcome,
    Recover: _on_recover,
    Unreachable: _on_unreachable,
    CastVote: _on_cast_vote,
    ReportAgain: _on_report_again,
    ReportAck: _on_report_ack,
    Withdraw: _on_withdraw,
}


def timer_obsolete(state: EventState, message) -> bool:
    """Whether a timer due now would change nothing in `state` or in any later state (so a
    site may drop it rather than start an actor for it). Unknown timers are never obsolete."""
    if isinstance(message, AskOutcome):  # decided transactions are never prepared again
        return state.prepared is None or state.prepared.txn_id != message.txn_id
    if isinstance(message, ReportAgain):  # rounds that ended here never run here again
        return _reportable(state, message.round, message.user) is None
    return False
