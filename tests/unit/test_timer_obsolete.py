"""A timer that a site drops for a retired actor must be one whose step would do nothing: no
record, no message, no timer, now or in any later state the log can reach."""

from __future__ import annotations

import itertools

import pytest

from domain import coordinator, event_state, participant
from domain.config import SiteConfig
from domain.coordinator import CoordinatorState
from domain.event_state import EventState
from domain.messages import (
    AckWaitOver,
    AskOutcome,
    CreateEvent,
    PrepareTimeout,
    ResendDecision,
    RoundDeadline,
    StartRound,
)
from domain.records import Aborted, Acknowledged, Began, Committed, Decided, Prepared

EVENT = "ev-picnic"
CONFIG = SiteConfig(site=1, sites=(1, 2, 3))
CREATE = CreateEvent("Picnic", 1, "2026-11-26T10:00:00+00:00")
ROUND = StartRound(1, 0, 1e12, ())

COORDINATOR_LOGS = {
    "nothing": (),
    "preparing": (Began("t1", CREATE, (1, 2, 3)),),
    "committed, 2 acks to come": (Began("t1", CREATE, (1, 2, 3)), Decided("t1", True, None),
                                  Acknowledged("t1", (1,))),
    "committed, all acknowledged": (Began("t1", CREATE, (1, 2, 3)), Decided("t1", True, None),
                                    Acknowledged("t1", (1, 2, 3))),
    "aborted, all acknowledged": (Began("t1", CREATE, (1, 2, 3)), Decided("t1", False, "conflict"),
                                  Acknowledged("t1", (1, 2, 3))),
    "round open": (Began("r1", ROUND, (1, 2, 3)), Decided("r1", True, None)),
}
COORDINATOR_TIMERS = [PrepareTimeout("t1"), ResendDecision("t1", 2), AckWaitOver("t1"), RoundDeadline(1)]

PARTICIPANT_LOGS = {
    "nothing": (),
    "prepared t1": (Prepared("t1", 1, CREATE),),
    "prepared t1, committed": (Prepared("t1", 1, CREATE), Committed("t1")),
    "prepared t1, aborted": (Prepared("t1", 1, CREATE), Aborted("t1")),
}
PARTICIPANT_TIMERS = [AskOutcome("t1", 1), AskOutcome("t1", 3), AskOutcome("t0", 1)]


def does_nothing(step) -> bool:
    return not (step.records or step.send or step.timers)


@pytest.mark.parametrize(("log", "timer"), list(itertools.product(COORDINATOR_LOGS, COORDINATOR_TIMERS)))
def test_a_coordinator_timer_judged_obsolete_does_nothing(log, timer):
    state = coordinator.fold_all(CoordinatorState(EVENT), COORDINATOR_LOGS[log])

    if coordinator.timer_obsolete(state, timer):
        assert does_nothing(coordinator.step(state, timer, CONFIG, now=0.0))


@pytest.mark.parametrize(("log", "timer"), list(itertools.product(PARTICIPANT_LOGS, PARTICIPANT_TIMERS)))
def test_a_participant_timer_judged_obsolete_does_nothing(log, timer):
    state = event_state.fold_all(EventState(EVENT), PARTICIPANT_LOGS[log])

    if participant.timer_obsolete(state, timer):
        assert does_nothing(participant.step(state, timer, CONFIG, now=0.0))


@pytest.mark.parametrize(
    ("log", "timer", "obsolete"),
    [
        ("preparing", PrepareTimeout("t1"), False),  # it aborts the transaction
        ("committed, 2 acks to come", PrepareTimeout("t1"), True),
        ("committed, 2 acks to come", ResendDecision("t1", 2), False),  # it resends
        ("committed, all acknowledged", ResendDecision("t1", 2), True),
        ("aborted, all acknowledged", ResendDecision("t1", 2), True),
        ("round open", RoundDeadline(1), False),  # it collects the votes
        ("nothing", RoundDeadline(1), True),
    ],
)
def test_which_coordinator_timers_are_obsolete(log, timer, obsolete):
    state = coordinator.fold_all(CoordinatorState(EVENT), COORDINATOR_LOGS[log])

    assert coordinator.timer_obsolete(state, timer) is obsolete


@pytest.mark.parametrize(
    ("log", "timer", "obsolete"),
    [
        ("prepared t1", AskOutcome("t1", 1), False),  # in doubt: it asks around
        ("prepared t1, committed", AskOutcome("t1", 1), True),
        ("prepared t1, aborted", AskOutcome("t1", 1), True),
        ("prepared t1", AskOutcome("t0", 1), True),
    ],
)
def test_which_participant_timers_are_obsolete(log, timer, obsolete):
    state = event_state.fold_all(EventState(EVENT), PARTICIPANT_LOGS[log])

    assert participant.timer_obsolete(state, timer) is obsolete
