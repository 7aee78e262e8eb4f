"""What the protocol simulations share: sites of one event, each a participant and a coordinator
run as pure steps, and a network between them that the scheduler may deliver in any order,
duplicate, drop or bounce back as Unreachable, with timers and crashes that lose memory but not
the logs. Each simulation adds its own actions and invariants (`check_safety`, `check_healed`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain import coordinator, participant
from domain.config import SiteConfig
from domain.coordinator import CoordinatorState
from domain.event_state import EventState
from domain.event_state import fold_all as fold_participant
from domain.messages import (Ack, CountRelay, Decision, Outcome, Prepare, Query, Recover, ReportAck,
                             Unreachable, Vote, VoteReport)
from domain.records import Aborted, Committed, Decided, Prepared
from domain.step import Step

PARTICIPANT, COORDINATOR = "participant", "coordinator"
REQUESTS = (Prepare, Decision, Query, VoteReport)  # what the transport may bounce
HEAL_STEPS = 5_000

CoordinatorStep = Callable[[CoordinatorState, object, SiteConfig, float], Step]


class Violation(AssertionError):
    """An invariant of the protocol does not hold."""


@dataclass(frozen=True)
class Envelope:
    src: int
    dst: int
    message: object


@dataclass(frozen=True)
class PendingTimer:
    due: float
    site: int
    role: str
    message: object


@dataclass
class Site:
    config: SiteConfig
    participant: EventState
    coordinator: CoordinatorState
    participant_log: list = field(default_factory=list)
    coordinator_log: list = field(default_factory=list)


def durable(state: CoordinatorState) -> CoordinatorState:
    """What a crash keeps of a coordinator: not the votes and ballots heard, nor the answers."""
    txns = {t: replace(txn, yes=frozenset(), heard=frozenset(), ballots=(), answered=False)
            for t, txn in state.txns.items()}
    return replace(state, txns=txns)


class SimulatedSites:
    """The sites and the network; every action checks safety (`check_safety`, by the subclass)."""

    def __init__(self, event: str, sites: dict[int, Site], coordinator_step: CoordinatorStep):
        self.event = event
        self.sites = sites
        self.coordinator_step = coordinator_step
        self.in_flight: list[Envelope] = []
        self.timers: list[PendingTimer] = []
        self.finished: list[tuple[int, object]] = []
        self.now = 0.0

    # --- what a simulation adds ------------------------------------------------------------------
    def check_safety(self) -> None:
        raise NotImplementedError

    def check_healed(self) -> None:
        raise NotImplementedError

    def _check_participant_step(self, site_id: int, state: EventState, records) -> None:
        """Called before a participant's records are stored."""

    def _participant_stepped(self, site_id: int) -> None:
        """Called once a participant's records are stored."""

    def _held_back(self, envelope: Envelope) -> bool:
        """Whether the schedule keeps this message back for now."""
        return False

    # --- running a role --------------------------------------------------------------------------
    def _run(self, site_id: int, role: str, message) -> object:
        site = self.sites[site_id]
        if role == PARTICIPANT:
            before = site.participant
            result = participant.step(before, message, site.config, self.now)
            if result.state != fold_participant(before, result.records):
                raise Violation(f"participant state is not the fold of its records: {message}")
            self._check_participant_step(site_id, before, result.records)
            site.participant_log.extend(result.records)
            site.participant = result.state
            self._participant_stepped(site_id)
        else:
            before = site.coordinator
            result = self.coordinator_step(before, message, site.config, self.now)
            if durable(result.state) != durable(coordinator.fold_all(before, result.records)):
                raise Violation(f"coordinator state is not the fold of its records: {message}")
            site.coordinator_log.extend(result.records)
            site.coordinator = result.state
        # Stored above; only now does anything leave the role.
        self.in_flight += [Envelope(site_id, send.site, send.message) for send in result.send]
        self.timers += [PendingTimer(self.now + t.delay_s, site_id, role, t.message)
                        for t in result.timers]
        self.finished += [(site_id, f) for f in result.finished]
        return result.reply

    def _reply(self, src: int, dst: int, reply) -> None:
        if reply is not None:
            self.in_flight.append(Envelope(src, dst, reply))

    # --- the network -----------------------------------------------------------------------------
    def deliverable(self) -> list[int]:
        return [i for i, e in enumerate(self.in_flight) if not self._held_back(e)]

    def deliver(self, index: int) -> None:
        envelope = self.in_flight[index]
        if self._held_back(envelope):
            return
        del self.in_flight[index]
        src, dst, message = envelope.src, envelope.dst, envelope.message
        if isinstance(message, (Prepare, Decision)):
            self._reply(dst, src, self._run(dst, PARTICIPANT, message))
        elif isinstance(message, Query):
            answer = self._run(dst, PARTICIPANT, message)
            if answer.commit is None and message.coordinator == dst:
                answer = self._run(dst, COORDINATOR, message)
            self._reply(dst, src, answer)
        elif isinstance(message, VoteReport):
            self._reply(dst, src, self._run(dst, COORDINATOR, message))
        elif isinstance(message, (Vote, Ack)):
            self._run(dst, COORDINATOR, message)
        elif isinstance(message, (Outcome, ReportAck)):
            self._run(dst, PARTICIPANT, message)
        elif isinstance(message, CountRelay):
            pass  # read by the site's pages, not by its protocol roles
        else:
            raise TypeError(f"not a site-to-site message: {message!r}")
        self.check_safety()

    def duplicate(self, index: int) -> None:
        self.in_flight.append(self.in_flight[index])

    def drop(self, index: int) -> None:
        del self.in_flight[index]

    def requests(self) -> list[int]:
        return [i for i in self.deliverable() if isinstance(self.in_flight[i].message, REQUESTS)]

    def bounce(self, index: int) -> None:
        """The transport gives up on a request: its sender hears Unreachable instead."""
        envelope = self.in_flight.pop(index)
        role = PARTICIPANT if isinstance(envelope.message, (Query, VoteReport)) else COORDINATOR
        self._run(envelope.src, role, Unreachable(envelope.dst, envelope.message))
        self.check_safety()

    # --- time and crashes ------------------------------------------------------------------------
    def fire(self, index: int) -> None:
        timer = self.timers.pop(index)
        self.now = max(self.now, timer.due)
        self._run(timer.site, timer.role, timer.message)
        self.check_safety()

    def fire_earliest(self) -> None:
        if self.timers:
            self.fire(min(range(len(self.timers)), key=lambda i: self.timers[i].due))

    def crash(self, site_id: int, keep_timers: bool, keep_mail: bool) -> None:
        """Both roles of a site lose their memory and are rebuilt from their logs."""
        site = self.sites[site_id]
        site.participant = fold_participant(EventState(self.event), site.participant_log)
        site.coordinator = coordinator.fold_all(CoordinatorState(self.event), site.coordinator_log)
        if not keep_timers:
            self.timers = [t for t in self.timers if t.site != site_id]
        if not keep_mail:
            self.in_flight = [e for e in self.in_flight if e.dst != site_id]
        self.check_safety()
        self._run(site_id, PARTICIPANT, Recover())
        self._run(site_id, COORDINATOR, Recover())
        self.check_safety()

    def heal(self) -> None:
        """Deliver everything and fire timers as they fall due until nothing is left to do."""
        for _ in range(HEAL_STEPS):
            ready = self.deliverable()
            if ready:
                self.deliver(ready[0])
            elif self.timers:
                self.fire_earliest()
            else:
                self.check_healed()
                return
        raise Violation(f"not quiet after {HEAL_STEPS} steps")

    # --- invariants both simulations check -------------------------------------------------------
    def decisions(self) -> dict[str, bool]:
        """Every coordinator's stored decisions (transaction ids are unique across sites)."""
        decided: dict[str, bool] = {}
        for site in self.sites.values():
            for record in site.coordinator_log:
                if isinstance(record, Decided):
                    if decided.get(record.txn_id, record.commit) != record.commit:
                        raise Violation(f"{record.txn_id} decided both ways")
                    decided[record.txn_id] = record.commit
        return decided

    def _check_agreement(self, decided: dict[str, bool]) -> None:
        """What any site knows of a transaction never contradicts another or the decision, and
        every site's photo list is a prefix of the longest one."""
        txns = set(decided)
        for site in self.sites.values():
            txns |= set(site.participant.answers) | set(site.participant.outcomes)
        for txn_id in txns:
            known = {s: site.participant.knows_outcome(txn_id) for s, site in self.sites.items()}
            seen = {v for v in known.values() if v is not None}
            if txn_id in decided:
                seen.add(decided[txn_id])
            if len(seen) > 1:
                raise Violation(f"{txn_id}: sites know {known}, coordinator {decided.get(txn_id)}")
        lists = {s: [p.photo_id for p in site.participant.photos] for s, site in self.sites.items()}
        longest = max(lists.values(), key=len)
        for s, photos in lists.items():
            if photos != longest[: len(photos)]:
                raise Violation(f"site {s} holds {photos}, another site {longest}")

    @staticmethod
    def _check_participant_log(site_id: int, log: list) -> None:
        """At most one transaction prepared at a time, and one outcome per transaction."""
        holder = None
        outcome: dict[str, bool] = {}
        for record in log:
            if isinstance(record, Prepared):
                if holder is not None:
                    raise Violation(f"site {site_id} prepared {record.txn_id} while {holder} was")
                holder = record.txn_id
            elif isinstance(record, (Committed, Aborted)):
                commit = isinstance(record, Committed)
                if outcome.get(record.txn_id, commit) != commit:
                    raise Violation(f"site {site_id} stored both outcomes of {record.txn_id}")
                outcome[record.txn_id] = commit
                if record.txn_id == holder:
                    holder = None


class NetworkMachine(RuleBasedStateMachine):
    """The rules both simulations give hypothesis over the network, time and healing. A subclass
    sets `self.cluster` in its @initialize rule and adds its own actions and its crash rule.

    Each run gets a budget of faults that stop progress (drop, bounce, fire a timer before its
    turn, crash), from none to many, so that some runs get far and others are stormy.
    Reordering and duplication are free."""

    max_heals = 2

    def __init__(self):
        super().__init__()
        self.cluster: SimulatedSites | None = None
        self.faults_left = 0
        self.heals_left = self.max_heals

    def fault(self) -> None:
        self.faults_left -= 1

    @precondition(lambda self: self.cluster.deliverable())
    @rule(count=st.integers(1, 8))
    def deliver_in_order(self, count):
        for _ in range(count):
            ready = self.cluster.deliverable()
            if ready:
                self.cluster.deliver(ready[0])

    @precondition(lambda self: self.cluster.deliverable())
    @rule(index=st.integers(0, 63))
    def deliver_out_of_order(self, index):
        ready = self.cluster.deliverable()
        self.cluster.deliver(ready[index % len(ready)])

    @precondition(lambda self: self.cluster.in_flight)
    @rule(index=st.integers(0, 63))
    def duplicate(self, index):
        self.cluster.duplicate(index % len(self.cluster.in_flight))

    @rule()
    def let_time_pass(self):
        """The timer that falls due first fires (if there is one)."""
        self.cluster.fire_earliest()

    @precondition(lambda self: self.faults_left > 0 and self.cluster.in_flight)
    @rule(index=st.integers(0, 63))
    def drop(self, index):
        self.fault()
        self.cluster.drop(index % len(self.cluster.in_flight))

    @precondition(lambda self: self.faults_left > 0 and self.cluster.requests())
    @rule(index=st.integers(0, 63))
    def bounce(self, index):
        self.fault()
        requests = self.cluster.requests()
        self.cluster.bounce(requests[index % len(requests)])

    @precondition(lambda self: self.faults_left > 0 and self.cluster.timers)
    @rule(index=st.integers(0, 63))
    def fire(self, index):
        self.fault()
        self.cluster.fire(index % len(self.cluster.timers))

    # Healing mid-run lets later phases happen (uploads once the event exists everywhere).
    @precondition(lambda self: self.heals_left > 0)
    @rule()
    def heal(self):
        self.heals_left -= 1
        self.cluster.heal()

    @invariant()
    def safe(self):
        if self.cluster is not None:
            self.cluster.check_safety()

    def teardown(self):
        if self.cluster is not None:
            self.cluster.heal()
