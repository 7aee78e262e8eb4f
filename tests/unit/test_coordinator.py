"""The coordinator of two-phase commit, as tables: given what it has stored (and the votes it has
heard since its last start, which it keeps in memory only), a message in, and what it must
store, send, schedule and tell its client. Each row's description is a sentence of the protocol;
every row also checks the step's contract: the durable part of the new state is the fold of the
records."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from domain import coordinator
from domain.config import SiteConfig
from domain.coordinator import CoordinatorState
from domain.messages import (
    Ack,
    AckWaitOver,
    AddPhotos,
    Begin,
    CreateEvent,
    Decision,
    Outcome,
    PhotoMeta,
    Prepare,
    PrepareTimeout,
    Publish,
    Query,
    Recover,
    ResendDecision,
    StartRound,
    Unreachable,
    Vote,
)
from domain.records import Acknowledged, Began, Decided
from domain.step import Finished, Send, Step, Timer

EVENT = "ev-picnic"
HERE = 1
SITES = (1, 2, 3)
CONFIG = SiteConfig(site=HERE, sites=SITES)
TIMING = CONFIG.timing
UPLOAD = AddPhotos(2, (PhotoMeta("photo-2", "sha-2", "thumb-2", "bob", HERE),))
BEGAN = Began("t-up", UPLOAD, SITES)


def yes(site: int, txn_id: str = "t-up") -> Vote:
    return Vote(txn_id, EVENT, site, True)


def no(site: int, reason: str | None = "conflict", txn_id: str = "t-up") -> Vote:
    return Vote(txn_id, EVENT, site, False, reason)


def ack(site: int, txn_id: str = "t-up") -> Ack:
    return Ack(txn_id, EVENT, site)


def decision_to(commit: bool, reason: str | None, *sites: int,
                txn_id: str = "t-up") -> tuple[Send, ...]:
    """The decision travels with its reason and payload, for sites that never saw the prepare."""
    return tuple(Send(s, Decision(txn_id, EVENT, commit, reason, UPLOAD)) for s in sites)


def resend_timer(attempt: int, txn_id: str = "t-up") -> Timer:
    return Timer(TIMING.backoff(attempt), ResendDecision(txn_id, attempt))


def aborted(reason: str, txn_id: str = "t-up") -> dict:
    """What a step that decides abort does: store, tell every site, resend, answer at once."""
    return dict(
        records=(Decided(txn_id, False, reason),),
        send=decision_to(False, reason, *SITES, txn_id=txn_id),
        timers=(resend_timer(1, txn_id),),
        finished=(Finished(txn_id, False, reason),),
    )


COMMITTED = [BEGAN, Decided("t-up", True, None)]
ABORTED = [BEGAN, Decided("t-up", False, "conflict")]


@dataclass(frozen=True)
class Row:
    description: str
    history: list  # records stored, then messages heard since the last start (volatile state)
    message: object
    records: tuple = ()
    send: tuple = ()
    timers: tuple = ()
    reply: object = None
    finished: tuple = ()
    finished_first: bool = False  # the client may hear before the records are stored
    send_first: bool = False  # the messages may go before the records are stored


def table(*rows: Row):
    return pytest.mark.parametrize("row", rows, ids=[r.description for r in rows])


def durable(state: CoordinatorState) -> CoordinatorState:
    """The part of the state a crash keeps: without the votes heard, the client answered and
    the site asked first."""
    txns = {t: replace(txn, yes=frozenset(), heard=frozenset(), answered=False, first=None)
            for t, txn in state.txns.items()}
    return replace(state, txns=txns)


def given(history: list) -> CoordinatorState:
    state = CoordinatorState(EVENT)
    for item in history:
        if type(item) in (Began, Decided, Acknowledged):
            state = coordinator.fold(state, item)
        else:
            state = coordinator.step(state, item, CONFIG).state
    return state


def check(row: Row) -> None:
    before = given(row.history)
    result = coordinator.step(before, row.message, CONFIG)
    assert result.records == row.records
    assert result.send == row.send
    assert result.timers == row.timers
    assert result.reply == row.reply
    assert result.finished == row.finished
    assert result.finished_first == row.finished_first
    assert result.send_first == row.send_first
    assert durable(result.state) == durable(coordinator.fold_all(before, result.records))


PREPARING = (
    Row("an upload's prepares go to every site while its Began is stored (presumed abort)",
        [], Begin("t-up", EVENT, UPLOAD, SITES),
        records=(BEGAN,), send=tuple(Send(s, Prepare("t-up", EVENT, HERE, UPLOAD)) for s in SITES),
        timers=(Timer(TIMING.prepare_timeout_s, PrepareTimeout("t-up")),), send_first=True),
    Row("a duplicate begin changes nothing",
        [BEGAN], Begin("t-up", EVENT, UPLOAD, SITES)),
    Row("a yes vote waits for the other sites",
        [BEGAN], yes(2)),
    Row("one no vote aborts and the client hears at once",
        [BEGAN, yes(1)], no(2, "conflict"), **aborted("conflict")),
    Row("a no vote without a reason aborts as refused",
        [BEGAN], no(3, None), **aborted("refused")),
    Row("a no vote carries the participant's reason to the client",
        [BEGAN], no(3, "contributor_limit"), **aborted("contributor_limit")),
    Row("all yes votes commit and the decision goes to every site; the client waits for acks",
        [BEGAN, yes(1), yes(3)], yes(2),
        records=(Decided("t-up", True, None),), send=decision_to(True, None, *SITES),
        timers=(resend_timer(1), Timer(TIMING.ack_wait_s, AckWaitOver("t-up")))),
    Row("an unreachable participant during prepare aborts with reason unreachable",
        [BEGAN, yes(1)], Unreachable(3, Prepare("t-up", EVENT, HERE, UPLOAD)),
        **aborted("unreachable")),
    Row("a prepare timeout aborts with reason unreachable",
        [BEGAN, yes(1), yes(2)], PrepareTimeout("t-up"), **aborted("unreachable")),
    Row("a prepare timeout after the decision changes nothing",
        COMMITTED, PrepareTimeout("t-up")),
    Row("an unreachable participant after the decision changes nothing",
        ABORTED, Unreachable(3, Prepare("t-up", EVENT, HERE, UPLOAD))),
)


@table(*PREPARING)
def test_the_coordinator_commits_only_on_every_yes_and_aborts_on_any_doubt(row):
    check(row)


def test_only_a_create_and_an_upload_send_their_prepares_before_their_began_is_stored():
    """A round's start and its collection attempts store their Began first: an attempt's id is
    built (a restarted home site begins it again), a start answers a request asked again."""
    def sends_first(payload) -> bool:
        step = coordinator.step(CoordinatorState(EVENT), Begin("t", EVENT, payload, SITES), CONFIG)
        assert step.records == (Began("t", payload, SITES),) and step.send
        return step.send_first

    assert sends_first(CreateEvent("Picnic", HERE, "now")) and sends_first(UPLOAD)
    assert not sends_first(StartRound(1, 1, 1e10, ("bob",)))
    assert not sends_first(Publish(1, 1, 1e10, ("bob",)))


def test_a_coordinator_that_lost_a_began_answers_that_the_transaction_aborted():
    """Presumed abort: a site that prepared a transaction whose Began was lost asks, and hears
    aborted (reason unknown); the votes that come meanwhile change nothing."""
    forgot = CoordinatorState(EVENT)
    assert coordinator.step(forgot, yes(1), CONFIG) == Step(forgot)
    answer = coordinator.step(forgot, Query("t-up", EVENT, 1, HERE), CONFIG).reply
    assert (answer.commit, answer.reason) == (False, "unknown")


def test_a_began_that_could_not_be_stored_is_recalled_from_the_sites_asked_to_prepare():
    first = coordinator.step(CoordinatorState(EVENT), Begin("t-up", EVENT, UPLOAD, SITES, 2), CONFIG)
    assert coordinator.recalled(first) == (
        Send(2, Decision("t-up", EVENT, False, "storage_unavailable", UPLOAD)),)  # only the home site
    start = coordinator.step(CoordinatorState(EVENT), Begin("t", EVENT, StartRound(1, 1, 1e10, ("bob",)), SITES),
                             CONFIG)
    assert coordinator.recalled(start) == ()  # nothing went before the store


HOME = 2  # the event's home site, not this one


def prepare_to(*sites: int) -> tuple[Send, ...]:
    return tuple(Send(s, Prepare("t-up", EVENT, HERE, UPLOAD)) for s in sites)


def begin(first: int | None) -> Begin:
    return Begin("t-up", EVENT, UPLOAD, SITES, first)


PREPARE_TIMER = (Timer(TIMING.prepare_timeout_s, PrepareTimeout("t-up")),)

HOME_FIRST = (
    Row("an upload is prepared at the event's home site first",
        [], begin(HOME), records=(BEGAN,), send=prepare_to(HOME), timers=PREPARE_TIMER,
        send_first=True),
    Row("once the home site voted yes, every other site is asked",
        [begin(HOME)], yes(HOME), send=prepare_to(1, 3)),
    Row("the home site's refusal aborts before any other site prepared it",
        [begin(HOME)], no(HOME, "conflict"), **aborted("conflict")),
    Row("the home site's yes heard again asks no one again",
        [begin(HOME), yes(HOME)], yes(HOME)),
    Row("after the home site's yes, every other yes commits as before",
        [begin(HOME), yes(HOME), yes(1)], yes(3),
        records=(Decided("t-up", True, None),), send=decision_to(True, None, *SITES),
        timers=(resend_timer(1), Timer(TIMING.ack_wait_s, AckWaitOver("t-up")))),
    Row("at the home site itself, its own participant is prepared first",
        [], begin(HERE), records=(BEGAN,), send=prepare_to(HERE), timers=PREPARE_TIMER,
        send_first=True),
    Row("at the home site itself, the others are asked once it voted yes",
        [begin(HERE)], yes(HERE), send=prepare_to(2, 3)),
    Row("a first site outside the transaction: every site at once",
        [], begin(9), records=(BEGAN,), send=prepare_to(*SITES), timers=PREPARE_TIMER,
        send_first=True),
)


@table(*HOME_FIRST)
def test_a_transaction_that_may_meet_another_goes_to_the_home_site_first(row):
    check(row)


ACKED_BY_ALL = (Acknowledged("t-up", SITES),)

FOLLOWING_THROUGH = (
    Row("an ack that is not the last is only heard: nothing is stored, the client hears nothing",
        [*COMMITTED, yes(1)], ack(2)),
    Row("all yes votes commit; the client hears after every ack (before they are stored "
        "together in one write: every site stored the commit before it acknowledged)",
        [*COMMITTED, ack(1), ack(3)], ack(2),
        records=ACKED_BY_ALL, finished=(Finished("t-up", True, None),), finished_first=True),
    Row("all yes votes commit; the client hears when ack_wait is over even if a site has "
        "not acknowledged",
        [*COMMITTED, ack(1)], AckWaitOver("t-up"),
        finished=(Finished("t-up", True, None),)),
    Row("the client hears a commit only once: the last ack after ack_wait reports nothing",
        [*COMMITTED, ack(1), ack(3), AckWaitOver("t-up")],
        ack(2), records=ACKED_BY_ALL),
    Row("the client hears a commit only once: ack_wait after the last ack reports nothing",
        [*COMMITTED, ack(1), ack(2), ack(3)], AckWaitOver("t-up")),
    Row("an aborted transaction tells the client nothing more when every site has acked",
        [BEGAN, no(2), ack(1), ack(2)], ack(3),
        records=ACKED_BY_ALL),
    Row("a decision is resent to the sites that have not acknowledged, with back-off",
        [*COMMITTED, ack(1)], ResendDecision("t-up", 1),
        send=decision_to(True, None, 2, 3), timers=(resend_timer(2),)),
    Row("an abort is resent like a commit until every site has acknowledged it",
        [*ABORTED, ack(2)], ResendDecision("t-up", 2),
        send=decision_to(False, "conflict", 1, 3), timers=(resend_timer(3),)),
    Row("the back-off between resends is bounded",
        [*COMMITTED], ResendDecision("t-up", 20),
        send=decision_to(True, None, *SITES), timers=(Timer(TIMING.resend_max_s,
                                                      ResendDecision("t-up", 21)),)),
    Row("resending stops once every site has acknowledged",
        [*COMMITTED, Acknowledged("t-up", SITES)], ResendDecision("t-up", 3)),
    Row("an undelivered decision changes nothing: its resend timer tries again",
        COMMITTED, Unreachable(2, Decision("t-up", EVENT, True, None, UPLOAD))),
)


@table(*FOLLOWING_THROUGH)
def test_the_coordinator_follows_a_decision_through_until_every_site_has_acknowledged(row):
    check(row)


RECOVERING = (
    Row("after a restart an undecided transaction is aborted and a decided one resent",
        [BEGAN, Began("t-next", UPLOAD, SITES), Decided("t-next", True, None),
         Acknowledged("t-next", (1,))],
        Recover(),
        records=(Decided("t-up", False, "coordinator_restarted"),),
        send=(*decision_to(False, "coordinator_restarted", *SITES),
              *decision_to(True, None, 2, 3, txn_id="t-next")),
        timers=(resend_timer(1), resend_timer(1, "t-next")),
        finished=(Finished("t-up", False, "coordinator_restarted"),)),
    Row("after a restart a fully acknowledged transaction needs nothing",
        [*COMMITTED, Acknowledged("t-up", SITES)], Recover()),
    Row("a query for an unknown transaction is answered abort (presumed abort)",
        [], Query("t-lost", EVENT, 2, HERE),
        reply=Outcome("t-lost", EVENT, HERE, False, "unknown")),
    Row("a query for an undecided transaction is answered with not known yet",
        [BEGAN, yes(2)], Query("t-up", EVENT, 2, HERE), reply=Outcome("t-up", EVENT, HERE, None)),
    Row("a query for a committed transaction is answered commit",
        COMMITTED, Query("t-up", EVENT, 2, HERE),
        reply=Outcome("t-up", EVENT, HERE, True, None, UPLOAD)),
    Row("a query for an aborted transaction is answered abort, with its reason",
        ABORTED, Query("t-up", EVENT, 2, HERE),
        reply=Outcome("t-up", EVENT, HERE, False, "conflict", UPLOAD)),
)


@table(*RECOVERING)
def test_the_coordinator_recovers_from_its_log_and_answers_queries_by_presumed_abort(row):
    check(row)


DUPLICATES = (
    Row("a duplicate yes vote does not count twice",
        [BEGAN, yes(1), yes(2)], yes(2)),
    Row("a duplicate no vote after the abort changes nothing",
        [*ABORTED, no(2)], no(2)),
    Row("a late yes vote after the abort changes nothing",
        [*ABORTED, no(2)], yes(3)),
    Row("a duplicate last yes vote after the commit changes nothing",
        [BEGAN, yes(1), yes(2), yes(3)], yes(3)),
    Row("a vote from a site outside the transaction changes nothing",
        [BEGAN, yes(1), yes(2)], yes(4)),
    Row("a vote for an unknown transaction changes nothing",
        [], yes(2)),
    Row("a duplicate ack changes nothing",
        [*COMMITTED, ack(2)], ack(2)),
    Row("an ack from a site outside the transaction changes nothing",
        COMMITTED, ack(4)),
    Row("an ack for an undecided transaction changes nothing",
        [BEGAN], ack(2)),
    Row("an ack for an unknown transaction changes nothing",
        [], ack(2)),
)


@table(*DUPLICATES)
def test_duplicate_votes_and_acks_change_nothing(row):
    check(row)


def test_after_a_restart_the_last_ack_of_an_aborted_transaction_never_tells_the_client_commit():
    state = given([*ABORTED, Acknowledged("t-up", (1,)), Acknowledged("t-up", (2,))])
    state = coordinator.step(state, Recover(), CONFIG).state
    result = coordinator.step(state, ack(3), CONFIG)
    assert result.records == (Acknowledged("t-up", (3,)),)
    assert all(not f.commit for f in result.finished)
