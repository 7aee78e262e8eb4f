"""The home site's round master: the voting rounds of an event, beside its 2PC coordinator.

A committed StartRound opens a round here (its opening accept counted at once). Each ballot site
reports the votes it stores; the master stores each report (Reported), acknowledges it, and
relays what it has counted to every site (best effort: pages show the event-wide count). When
the reports decide the round (every submitter accepted, or someone rejected), or at its
deadline, it collects: a Publish transaction, attempt 1, 2, ..., whose prepare answers carry
every site's ballots and whose tally decides publication.

An attempt that fails for a site's sake (a participant unreachable or in the way, this site
restarted with the attempt undecided) is not the end of the round: its abort says RETRY, the
sites that closed voting for it reopen it, and the master tries again after a back-off. The
round ends only by publication, a reject, a missing accept at the deadline, or a site still
unreachable `collect_grace_s` after the deadline.

The coordinator (domain.coordinator) runs the transactions; this module decides when to run a
collection, and what its abort means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from domain.config import SiteConfig
from domain.evolve import evolve
from domain.messages import (
    RETRY,
    Ballot,
    CollectAgain,
    CountRelay,
    Publish,
    ReportAck,
    RoundDeadline,
    StartRound,
    VoteReport,
)
from domain.records import Reported
from domain.step import Send, Step, Timer
from domain.vote_tally import PENDING, tally

# The reasons a collection's abort may carry from a tally: they end the round whenever decided.
TALLIED = ("rejected", "timeout")


@dataclass(frozen=True)
class ActiveRound:
    """A round this (home) site started and has not finished."""

    start: StartRound
    collecting: bool = False  # an attempt is under way (begun, not decided)
    attempts: int = 0  # collection attempts begun so far
    reported: Mapping[str, Ballot] = field(default_factory=dict)  # user -> the vote reported

    @property
    def round(self) -> int:
        return self.start.round

    def next_attempt(self, site: int) -> tuple[str, Publish]:
        """The id and payload of the next collection attempt (ids are built, not drawn, so
        that a restarted site and the specification name attempts alike)."""
        start, attempt = self.start, self.attempts + 1
        payload = Publish(start.round, start.version, start.deadline, start.submitters, attempt)
        return collection_id(site, start.round, attempt), payload


def collection_id(site: int, round_number: int, attempt: int) -> str:
    return f"{site}-r{round_number}-c{attempt}"


def opened(start: StartRound) -> ActiveRound:
    """The round a committed StartRound opens: the accept that asked for it counts at once."""
    reported = {start.ballot.user: start.ballot} if start.ballot else {}
    return ActiveRound(start, reported=reported)


def reported(active: ActiveRound, ballot: Ballot) -> ActiveRound:
    return evolve(active, reported={**active.reported, ballot.user: ballot})


def begun(active: ActiveRound, payload: Publish) -> ActiveRound:
    return evolve(active, collecting=True, attempts=max(active.attempts, payload.attempt))


def after_collection(active: ActiveRound, commit: bool, reason: str | None) -> ActiveRound | None:
    """The round once an attempt is decided: over, unless the attempt is to be retried."""
    if not commit and reason == RETRY:
        return evolve(active, collecting=False)
    return None


def abort_reason(payload: Publish, reason: str, config: SiteConfig, now: float) -> str:
    """What the abort of a collection attempt says: the tally's reason as it is; any other
    failure is a site's, retried until the grace period after the deadline is over."""
    if reason in TALLIED:
        return reason
    if now < payload.deadline + config.timing.collect_grace_s:
        return RETRY
    return "unreachable"


def retry_timer(payload: Publish, config: SiteConfig) -> Timer:
    return Timer(config.timing.backoff(payload.attempt), CollectAgain(payload.round, payload.attempt + 1))


def deadline_timer(start: StartRound, now: float) -> Timer:
    return Timer(max(0.0, start.deadline - now), RoundDeadline(start.round))


def relay(event_id: str, active: ActiveRound, config: SiteConfig) -> tuple[Send, ...]:
    """What this site has counted, to every site (itself included: its pages read it too)."""
    counted = CountRelay(event_id, active.round, tuple(sorted(active.reported.values(),
                                                              key=lambda b: (b.at, b.user))))
    return tuple(Send(site, counted) for site in config.sites)


def decided_by_reports(active: ActiveRound) -> bool:
    start = active.start
    verdict, _ = tally(start.submitters, active.reported.values(), start.deadline, final=False)
    return verdict != PENDING


def open_round(active: ActiveRound | None, round_number: int) -> ActiveRound | None:
    """The active round if it is `round_number` and no attempt is under way."""
    if active is None or active.collecting or active.round != round_number:
        return None
    return active


# --- the master's steps: `state` is the CoordinatorState; `collect(state)` begins an attempt -----

Collect = Callable[[object], Step]


def on_vote_report(state, msg: VoteReport, config: SiteConfig, collect: Collect) -> Step:
    """Store the report (once), acknowledge it, relay the count; collect at once when the
    reports decide the round. A report of a round not open here is acknowledged all the same:
    its vote reaches the collection in its site's prepare answer."""
    ack = ReportAck(msg.event_id, msg.round, msg.ballot.user)
    active = open_round(state.active, msg.round)
    if active is None or msg.ballot.user in active.reported:
        return Step(state, reply=ack)
    record = Reported(msg.round, msg.ballot)
    state = evolve(state, active=reported(active, msg.ballot))
    told = Step(state, records=(record,), send=relay(state.event_id, state.active, config), reply=ack)
    if not decided_by_reports(state.active):
        return told
    return merge(told, collect(state))


def on_round_deadline(state, msg: RoundDeadline, config: SiteConfig, collect: Collect) -> Step:
    if open_round(state.active, msg.round) is None:
        return Step(state)
    return collect(state)


def on_collect_again(state, msg: CollectAgain, config: SiteConfig, collect: Collect) -> Step:
    active = open_round(state.active, msg.round)
    if active is None or active.attempts + 1 != msg.attempt:
        return Step(state)  # the round ended, or that attempt is already under way
    return collect(state)


def after_start(state, config: SiteConfig, now: float, collect: Collect) -> Step:
    """Just after a StartRound committed: wait for the deadline, relay the opening accept, and
    collect at once if that accept decides the round (one submitter)."""
    active = state.active
    waiting = Step(state, timers=(deadline_timer(active.start, now),),
                   send=relay(state.event_id, active, config))
    if not decided_by_reports(active):
        return waiting
    return merge(waiting, collect(state))


def recover(state, config: SiteConfig, now: float, collect: Collect) -> Step:
    """After a restart, with undecided attempts already aborted: collect at once a round that
    is due (decided by its reports, past its deadline, or with an attempt to retry); otherwise
    wait for its deadline. Either way, relay the count again."""
    active = state.active
    if active is None or active.collecting:
        return Step(state)
    told = Step(state, send=relay(state.event_id, active, config))
    if decided_by_reports(active) or now >= active.start.deadline or active.attempts:
        return merge(told, collect(state))
    return merge(told, Step(state, timers=(deadline_timer(active.start, now),)))


def timer_obsolete(active: ActiveRound | None, message) -> bool:
    if isinstance(message, RoundDeadline):
        return open_round(active, message.round) is None
    if isinstance(message, CollectAgain):
        return active is None or active.round != message.round or active.attempts >= message.attempt
    return False


def merge(*steps: Step) -> Step:
    """Steps taken one after another, as one: the last state, everything else in order (a
    reply from any of them)."""
    return Step(
        steps[-1].state,
        records=tuple(r for s in steps for r in s.records),
        send=tuple(m for s in steps for m in s.send),
        timers=tuple(t for s in steps for t in s.timers),
        reply=next((s.reply for s in steps if s.reply is not None), None),
        finished=tuple(f for s in steps for f in s.finished),
        alarms=tuple(a for s in steps for a in s.alarms),
        # early answers only if every step that answers allows it
        finished_first=any(s.finished for s in steps) and all(s.finished_first for s in steps if s.finished),
    )
