"""Voting rounds, as tables: the round parts of the participant's and the coordinator's steps.
Given what a role has stored, a message in, and what it must store, send, schedule and answer.
Each row's description is a sentence of the protocol; every row also checks the step's
contract: the (durable) new state is the fold of the records.

A round: the home site (1) runs a StartRound 2PC that freezes version 2 (photos by ann and bob)
everywhere and opens round 1 until DEADLINE; people vote at any site, which stores the ballot
(VoteCast) and reports it to the home site; reports that already decide, or the deadline, make
the home site run the collection (a Publish 2PC, txn COLLECT) whose yes votes carry each site's
ballots; the final tally commits (publishes) or aborts it (the round ends everywhere)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from domain import coordinator, participant
from domain.config import SiteConfig
from domain.coordinator import CoordinatorState
from domain.event_state import EventState, RoundOutcome, fold_all
from domain.messages import (
    ACCEPT,
    REJECT,
    Ack,
    AckWaitOver,
    AddPhotos,
    AskOutcome,
    Ballot,
    Begin,
    CastVote,
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
    RoundDeadline,
    StartRound,
    Unreachable,
    Vote,
    VoteAnswer,
    VoteReport,
    Withdraw,
)
from domain.messages import IN_DOUBT, RETRY, STARTED, WITHDRAWN, CollectAgain, CountRelay, ReportAck, ReportAgain
from domain.records import (
    Aborted,
    Acknowledged,
    Began,
    Committed,
    Decided,
    Prepared,
    Refused,
    Reported,
    VoteCast,
    Withdrawn,
)
from domain.step import Finished, Send, Timer

EVENT = "ev-picnic"
HOME = 1
HERE = 2  # the participant's site in the participant tables
SITES = (1, 2, 3)
PARTICIPANT_CONFIG = SiteConfig(site=HERE, sites=SITES)
HOME_CONFIG = SiteConfig(site=HOME, sites=SITES)
TIMING = HOME_CONFIG.timing
DEADLINE = 1_000.0
NOW = 900.0  # the clock when a message arrives, unless a row says otherwise
SUBMITTERS = ("ann", "bob")
CREATE = CreateEvent(title="Picnic", home_site=HOME, created_at="2024-06-01T12:00:00+00:00")
START = StartRound(1, 2, DEADLINE, SUBMITTERS)
PUBLISH = Publish(1, 2, DEADLINE, SUBMITTERS)
START_TXN = "t-start"
REQUEST = "2-ann-accept"  # a round request made at this site for ann's accept
OPENED = replace(START, request=REQUEST, ballot=Ballot("ann", ACCEPT, NOW - 1, HERE))
ALONE = StartRound(1, 1, DEADLINE, ("ann",), REQUEST, Ballot("ann", ACCEPT, NOW - 1, HERE))
ALONE_PUBLISH = Publish(1, 1, DEADLINE, ("ann",))
COLLECT = "1-r1-c1"  # the home site's collection of round 1, its first attempt


def upload(version: int, submitter: str) -> AddPhotos:
    return AddPhotos(version, (PhotoMeta(f"photo-{version}", f"sha-{version}", f"thumb-{version}",
                                         submitter, HERE),))


def ballot(user: str, decision: str = ACCEPT, at: float = NOW, site: int = HERE) -> Ballot:
    return Ballot(user, decision, at, site)


def cast(user: str, decision: str = ACCEPT, at: float = NOW, version: int = 2) -> CastVote:
    return CastVote(EVENT, user, version, decision, at)


def refused_vote(reason: str) -> VoteAnswer:
    return VoteAnswer(None, None, reason)


# --- a participant's stored histories ------------------------------------------------------------


def open_event() -> list:
    """The event at version 2: one photo by ann, one by bob; no round yet."""
    records = [Prepared("t-create", HOME, CREATE), Committed("t-create")]
    for version, submitter in enumerate(SUBMITTERS):
        records += [Prepared(f"t-up-{version}", 3, upload(version, submitter)),
                    Committed(f"t-up-{version}")]
    return records


def voting(*ballots: Ballot) -> list:
    """Round 1 runs here, with these votes cast here."""
    return [*open_event(), Prepared(START_TXN, HOME, START), Committed(START_TXN),
            *(VoteCast(1, b) for b in ballots)]


def collecting(*ballots: Ballot) -> list:
    """This site has answered yes to the collection: voting is closed here."""
    return [*voting(*ballots), Prepared(COLLECT, HOME, PUBLISH)]


def published() -> list:
    return [*collecting(ballot("ann"), ballot("bob")), Committed(COLLECT)]


def round_aborted(reason: str = "rejected") -> list:
    return [*collecting(ballot("ann", REJECT)), Aborted(COLLECT, reason)]


def prepare(txn_id: str, payload, coordinator: int = HOME) -> Prepare:
    return Prepare(txn_id, EVENT, coordinator, payload)


def answer(txn_id: str, yes: bool, reason: str | None = None, ballots=()) -> Vote:
    return Vote(txn_id, EVENT, HERE, yes, reason, tuple(ballots))


def in_doubt_timer(txn_id: str) -> tuple[Timer, ...]:
    return (Timer(TIMING.in_doubt_s, AskOutcome(txn_id, 1)),)


def reported(b: Ballot) -> tuple[Send, ...]:
    return (Send(HOME, VoteReport(EVENT, 1, b)),)


def relayed(*ballots: Ballot, round_number: int = 1) -> tuple[Send, ...]:
    """The home site's count of a round, relayed to every site (itself included)."""
    return tuple(Send(s, CountRelay(EVENT, round_number, ballots)) for s in SITES)


UNCHECKED = object()


@dataclass(frozen=True)
class ParticipantRow:
    description: str
    history: list
    message: object
    records: tuple = ()
    send: tuple = ()
    timers: tuple = ()
    reply: object = None
    shows: object = UNCHECKED  # (phase, last_outcome) after the step
    site: int = HERE


def table(*rows):
    return pytest.mark.parametrize("row", rows, ids=[r.description for r in rows])


def run_participant(row: ParticipantRow):
    before = fold_all(EventState(EVENT), row.history)
    config = replace(PARTICIPANT_CONFIG, site=row.site)
    return before, participant.step(before, row.message, config, NOW)


def check_participant(row: ParticipantRow) -> None:
    before, result = run_participant(row)
    assert result.records == row.records
    assert result.send == row.send
    assert result.timers == row.timers
    assert result.reply == row.reply
    assert result.finished == ()
    assert result.state == fold_all(before, result.records)
    if row.shows is not UNCHECKED:
        assert (result.state.phase, result.state.last_outcome) == row.shows


P = ParticipantRow
VOTING = ("voting", None)

ADMISSION = (
    P("a participant votes yes on a round on its current version and stores Prepared first",
      open_event(), prepare(START_TXN, START),
      records=(Prepared(START_TXN, HOME, START),), timers=in_doubt_timer(START_TXN),
      reply=answer(START_TXN, True), shows=("open", None)),
    P("a round is refused while another transaction holds the lock",
      [*open_event(), Prepared("t-up-2", 3, upload(2, "cat"))], prepare(START_TXN, START),
      records=(Refused(START_TXN, HOME, "conflict"),),
      reply=answer(START_TXN, False, "conflict")),
    P("a round on a version older than this site's is refused as superseded_montage",
      open_event(), prepare(START_TXN, replace(START, version=1)),
      records=(Refused(START_TXN, HOME, "superseded_montage"),),
      reply=answer(START_TXN, False, "superseded_montage")),
    P("a round on a version this site does not hold is refused as superseded_montage",
      open_event(), prepare(START_TXN, replace(START, version=3)),
      records=(Refused(START_TXN, HOME, "superseded_montage"),),
      reply=answer(START_TXN, False, "superseded_montage")),
    P("a second round is refused while one runs",
      voting(), prepare("t-start-2", replace(START, round=2)),
      records=(Refused("t-start-2", HOME, "voting_in_progress"),),
      reply=answer("t-start-2", False, "voting_in_progress")),
    P("a round is refused once the event is published",
      published(), prepare("t-start-2", replace(START, round=2)),
      records=(Refused("t-start-2", HOME, "event_published"),),
      reply=answer("t-start-2", False, "event_published")),
    P("a round is admitted again after the last one aborted",
      round_aborted(), prepare("t-start-2", replace(START, round=2)),
      records=(Prepared("t-start-2", HOME, replace(START, round=2)),),
      timers=in_doubt_timer("t-start-2"), reply=answer("t-start-2", True)),
    P("a round on an event this site does not hold is refused as unknown_event",
      [], prepare(START_TXN, START),
      records=(Refused(START_TXN, HOME, "unknown_event"),),
      reply=answer(START_TXN, False, "unknown_event")),
    P("an upload is refused while a round runs: the event is frozen",
      voting(), prepare("t-up-2", upload(2, "cat"), coordinator=3),
      records=(Refused("t-up-2", 3, "voting_in_progress"),),
      reply=answer("t-up-2", False, "voting_in_progress")),
    P("an upload is refused once the event is published",
      published(), prepare("t-up-2", upload(2, "cat"), coordinator=3),
      records=(Refused("t-up-2", 3, "event_published"),),
      reply=answer("t-up-2", False, "event_published")),
    P("the collection is admitted while its round runs; the yes carries every ballot cast "
      "here, oldest first",
      voting(ballot("bob", at=NOW + 5), ballot("ann", REJECT, at=NOW)), prepare(COLLECT, PUBLISH),
      records=(Prepared(COLLECT, HOME, PUBLISH),), timers=in_doubt_timer(COLLECT),
      reply=answer(COLLECT, True, None, (ballot("ann", REJECT, at=NOW), ballot("bob", at=NOW + 5))),
      shows=VOTING),
    P("the collection at a site where nobody voted is a yes with no ballots",
      voting(), prepare(COLLECT, PUBLISH),
      records=(Prepared(COLLECT, HOME, PUBLISH),), timers=in_doubt_timer(COLLECT),
      reply=answer(COLLECT, True)),
    P("a duplicate collection prepare gets the same yes with the same ballots and stores "
      "nothing",
      collecting(ballot("ann")), prepare(COLLECT, PUBLISH),
      reply=answer(COLLECT, True, None, (ballot("ann"),))),
    P("a collection of another round is refused as no_such_round",
      voting(), prepare("1-r2-collect", replace(PUBLISH, round=2)),
      records=(Refused("1-r2-collect", HOME, "no_such_round"),),
      reply=answer("1-r2-collect", False, "no_such_round")),
    P("a collection where no round runs is refused as no_such_round",
      open_event(), prepare(COLLECT, PUBLISH),
      records=(Refused(COLLECT, HOME, "no_such_round"),),
      reply=answer(COLLECT, False, "no_such_round")),
    P("a collection reaching a site whose round start is still in doubt proves that start "
      "committed: the site applies it, then prepares the collection",
      [*open_event(), Prepared(START_TXN, HOME, START)], prepare(COLLECT, PUBLISH),
      records=(Committed(START_TXN), Prepared(COLLECT, HOME, PUBLISH)),
      timers=in_doubt_timer(COLLECT), reply=answer(COLLECT, True), shows=VOTING),
    P("a collection proves nothing about a round start from another coordinator",
      [*open_event(), Prepared(START_TXN, 3, START)], prepare(COLLECT, PUBLISH),
      records=(Refused(COLLECT, HOME, "no_such_round"),),
      reply=answer(COLLECT, False, "no_such_round")),
    P("a collection proves nothing about a round start of another round number",
      [*open_event(), Prepared(START_TXN, HOME, replace(START, round=2))], prepare(COLLECT, PUBLISH),
      records=(Refused(COLLECT, HOME, "no_such_round"),),
      reply=answer(COLLECT, False, "no_such_round")),
    P("a round start carries the accept that asked for it: its commit opens the round with "
      "that ballot",
      [*open_event(), Prepared(START_TXN, HOME, OPENED)], Decision(START_TXN, EVENT, True),
      records=(Committed(START_TXN),), reply=Ack(START_TXN, EVENT, HERE), shows=VOTING),
    P("a copy of a round request that already opened a round is refused as request_spent",
      [*open_event(), Prepared(START_TXN, HOME, OPENED), Committed(START_TXN),
       Prepared(COLLECT, HOME, PUBLISH), Aborted(COLLECT, "timeout")],
      prepare("t-start-2", replace(OPENED, round=2)),
      records=(Refused("t-start-2", HOME, "request_spent"),),
      reply=answer("t-start-2", False, "request_spent")),
    P("a round request withdrawn here is refused as request_spent: it can never start a round",
      [*open_event(), Withdrawn(REQUEST)], prepare(START_TXN, OPENED),
      records=(Refused(START_TXN, HOME, "request_spent"),),
      reply=answer(START_TXN, False, "request_spent")),
)


@table(*ADMISSION)
def test_a_participant_admits_round_starts_and_collections_by_the_rules(row):
    check_participant(row)


CASTING = (
    P("an accept from a submitter is stored as VoteCast before the answer and reported to the "
      "home site",
      voting(), cast("ann"),
      records=(VoteCast(1, ballot("ann")),), send=reported(ballot("ann")),
      reply=VoteAnswer(1, DEADLINE), shows=VOTING),
    P("a reject from a submitter is stored and reported the same way",
      voting(ballot("ann")), cast("bob", REJECT),
      records=(VoteCast(1, ballot("bob", REJECT)),), send=reported(ballot("bob", REJECT)),
      reply=VoteAnswer(1, DEADLINE), shows=VOTING),
    P("a vote cast exactly at the deadline is recorded",
      voting(), cast("ann", at=DEADLINE),
      records=(VoteCast(1, ballot("ann", at=DEADLINE)),),
      send=reported(ballot("ann", at=DEADLINE)), reply=VoteAnswer(1, DEADLINE)),
    P("a vote at a site that does not keep the person's ballot is refused as not_ballot_site "
      "(web.voting forwards it to the site that does)",
      voting(), cast("ann"), site=HOME, reply=refused_vote("not_ballot_site")),
    P("a vote from someone without a photo in the event is refused as not_submitter",
      voting(), cast("eve"), reply=refused_vote("not_submitter")),
    P("a vote from someone without a photo is refused as not_submitter even with no round",
      open_event(), cast("eve", REJECT), reply=refused_vote("not_submitter")),
    P("a reject while no round runs is refused as no_vote_in_progress",
      open_event(), cast("ann", REJECT), reply=refused_vote("no_vote_in_progress")),
    P("an accept while no round runs here is refused: the round must start first",
      open_event(), cast("ann"), reply=refused_vote("no_vote_in_progress")),
    P("a vote while the round start is still in doubt here is refused as no_vote_in_progress",
      [*open_event(), Prepared(START_TXN, HOME, START)], cast("ann"),
      reply=refused_vote("no_vote_in_progress")),
    P("the accept that opened the round is a recorded vote: another is refused as already_voted",
      [*open_event(), Prepared(START_TXN, HOME, OPENED), Committed(START_TXN)], cast("ann"),
      reply=refused_vote("already_voted")),
    P("a vote on a superseded montage version is refused as superseded_montage",
      voting(), cast("ann", version=1), reply=refused_vote("superseded_montage")),
    P("a second vote by the same person is refused as already_voted",
      voting(ballot("ann")), cast("ann", at=NOW + 1), reply=refused_vote("already_voted")),
    P("a copy of a vote stored here (a forwarded vote sent again) gets the same answer and "
      "stores nothing",
      voting(ballot("ann")), cast("ann"), reply=VoteAnswer(1, DEADLINE)),
    P("a copy of a vote kept here gets the same answer after its round published",
      published(), cast("ann"), reply=VoteAnswer(1, DEADLINE)),
    P("a copy of the accept that opened the round gets the same answer after the round ended",
      [*open_event(), Prepared(START_TXN, HOME, OPENED), Committed(START_TXN),
       *collecting()[len(voting()):], Aborted(COLLECT, "rejected")],
      cast("ann", at=NOW - 1), reply=VoteAnswer(1, DEADLINE)),
    P("a recorded vote is final: changing it is refused as already_voted",
      voting(ballot("ann")), cast("ann", REJECT), reply=refused_vote("already_voted")),
    P("a vote cast after the deadline is refused as voting_closed",
      voting(), cast("ann", at=DEADLINE + 0.5), reply=refused_vote("voting_closed")),
    P("a vote at a site that has answered the collection is refused as voting_closed",
      collecting(), cast("ann"), reply=refused_vote("voting_closed")),
    P("a vote on a published event is refused as event_published",
      published(), cast("ann", at=NOW + 1), reply=refused_vote("event_published")),
    P("a vote after the round aborted is refused as no_vote_in_progress",
      round_aborted(), cast("bob", REJECT), reply=refused_vote("no_vote_in_progress")),
    P("a vote on an event this site does not hold is refused as unknown_event",
      [], cast("ann"), reply=refused_vote("unknown_event")),
    P("a report the home site did not acknowledge is sent again after a back-off",
      voting(ballot("ann")), Unreachable(HOME, VoteReport(EVENT, 1, ballot("ann"))),
      timers=(Timer(TIMING.backoff(1), ReportAgain(1, "ann", 1)),)),
    P("the report sent again carries the vote stored here and its attempt",
      voting(ballot("ann")), ReportAgain(1, "ann", 1),
      send=(Send(HOME, VoteReport(EVENT, 1, ballot("ann"), 1)),)),
    P("a report is not sent again once its round ended here",
      round_aborted(), ReportAgain(1, "ann", 1)),
    P("an acknowledged report needs nothing more", voting(ballot("ann")), ReportAck(EVENT, 1, "ann")),
    P("a decision other than accept or reject is refused as invalid_request",
      voting(), cast("ann", "maybe"), reply=refused_vote("invalid_request")),
)


@table(*CASTING)
def test_a_participant_records_a_vote_durably_and_reports_it_or_says_why_not(row):
    check_participant(row)


WITHDRAWING = (
    P("a round request not seen here is withdrawn durably: its start will be refused here",
      open_event(), Withdraw(EVENT, REQUEST), records=(Withdrawn(REQUEST),), reply=WITHDRAWN),
    P("withdrawing twice stores nothing more",
      [*open_event(), Withdrawn(REQUEST)], Withdraw(EVENT, REQUEST), reply=WITHDRAWN),
    P("a round request prepared here cannot be withdrawn: it is in doubt",
      [*open_event(), Prepared(START_TXN, HOME, OPENED)], Withdraw(EVENT, REQUEST),
      reply=IN_DOUBT),
    P("a round request whose start committed here is not withdrawn: it started the round",
      [*open_event(), Prepared(START_TXN, HOME, OPENED), Committed(START_TXN)],
      Withdraw(EVENT, REQUEST), reply=STARTED),
    P("a request is withdrawn while another's round start is prepared here",
      [*open_event(), Prepared(START_TXN, HOME, START)], Withdraw(EVENT, REQUEST),
      records=(Withdrawn(REQUEST),), reply=WITHDRAWN),
)


@table(*WITHDRAWING)
def test_a_voters_site_withdraws_a_round_request_only_while_it_cannot_have_started(row):
    check_participant(row)


ENDING = (
    P("a committed round start opens the round here",
      [*open_event(), Prepared(START_TXN, HOME, START)],
      Decision(START_TXN, EVENT, True, None, START),
      records=(Committed(START_TXN),), reply=Ack(START_TXN, EVENT, HERE), shows=VOTING),
    P("an aborted round start leaves the event open",
      [*open_event(), Prepared(START_TXN, HOME, START)],
      Decision(START_TXN, EVENT, False, "conflict", START),
      records=(Aborted(START_TXN, "conflict", START),), reply=Ack(START_TXN, EVENT, HERE),
      shows=("open", None)),
    P("a committed collection publishes the round's version for good",
      collecting(ballot("ann"), ballot("bob")), Decision(COLLECT, EVENT, True, None, PUBLISH),
      records=(Committed(COLLECT),), reply=Ack(COLLECT, EVENT, HERE),
      shows=("published", RoundOutcome(1, "published", None))),
    P("an aborted collection prepared here ends the round as rejected",
      collecting(ballot("ann", REJECT)), Decision(COLLECT, EVENT, False, "rejected", PUBLISH),
      records=(Aborted(COLLECT, "rejected", PUBLISH),), reply=Ack(COLLECT, EVENT, HERE),
      shows=("open", RoundOutcome(1, "aborted", "rejected"))),
    P("an aborted collection prepared here ends the round as timeout",
      collecting(ballot("ann")), Decision(COLLECT, EVENT, False, "timeout", PUBLISH),
      records=(Aborted(COLLECT, "timeout", PUBLISH),), reply=Ack(COLLECT, EVENT, HERE),
      shows=("open", RoundOutcome(1, "aborted", "timeout"))),
    P("an abort with the Publish payload ends the round at a site that never prepared the "
      "collection",
      voting(ballot("ann")), Decision(COLLECT, EVENT, False, "unreachable", PUBLISH),
      records=(Aborted(COLLECT, "unreachable", PUBLISH),), reply=Ack(COLLECT, EVENT, HERE),
      shows=("open", RoundOutcome(1, "aborted", "unreachable"))),
    P("an abort with the Publish payload ends the round at a site that refused the collection",
      [*voting(), Refused(COLLECT, HOME, "conflict")],
      Decision(COLLECT, EVENT, False, "conflict", PUBLISH),
      records=(Aborted(COLLECT, "conflict", PUBLISH),), reply=Ack(COLLECT, EVENT, HERE),
      shows=("open", RoundOutcome(1, "aborted", "unreachable"))),
    P("an abort of another round's collection leaves this round running",
      voting(), Decision("1-r7-collect", EVENT, False, "timeout", replace(PUBLISH, round=7)),
      records=(Aborted("1-r7-collect", "timeout", replace(PUBLISH, round=7)),),
      reply=Ack("1-r7-collect", EVENT, HERE), shows=VOTING),
    P("a duplicate abort of the collection is acknowledged again and stores nothing",
      round_aborted(), Decision(COLLECT, EVENT, False, "rejected", PUBLISH),
      reply=Ack(COLLECT, EVENT, HERE), shows=("open", RoundOutcome(1, "aborted", "rejected"))),
    P("a duplicate commit of the collection is acknowledged again; the event stays published",
      published(), Decision(COLLECT, EVENT, True, None, PUBLISH),
      reply=Ack(COLLECT, EVENT, HERE), shows=("published", RoundOutcome(1, "published", None))),
    P("a site in doubt about the collection ends the round on a peer's abort outcome",
      collecting(ballot("ann")), Outcome(COLLECT, EVENT, 3, False, "rejected"),
      records=(Aborted(COLLECT, "rejected"),),
      shows=("open", RoundOutcome(1, "aborted", "rejected"))),
    P("a site in doubt about the collection publishes on a peer's commit outcome",
      collecting(ballot("ann")), Outcome(COLLECT, EVENT, 3, True),
      records=(Committed(COLLECT),), shows=("published", RoundOutcome(1, "published", None))),
    P("a site in doubt about the collection asks the home site and its peers",
      collecting(), AskOutcome(COLLECT, 1),
      send=tuple(Send(s, Query(COLLECT, EVENT, HERE, HOME)) for s in (1, 3)),
      timers=(Timer(TIMING.backoff(1) + TIMING.in_doubt_s, AskOutcome(COLLECT, 2)),)),
    P("a collection attempt aborted to be retried leaves the round running: voting reopens here",
      collecting(ballot("ann")), Decision(COLLECT, EVENT, False, RETRY, PUBLISH),
      records=(Aborted(COLLECT, RETRY, PUBLISH),), reply=Ack(COLLECT, EVENT, HERE), shows=VOTING),
    P("a retried attempt's abort at a site that never prepared it changes nothing there",
      voting(), Decision(COLLECT, EVENT, False, RETRY, PUBLISH),
      records=(Aborted(COLLECT, RETRY, PUBLISH),), reply=Ack(COLLECT, EVENT, HERE), shows=VOTING),
    P("a site in doubt about an attempt does not take a peer's refusal for the round's end",
      collecting(ballot("ann")), Outcome(COLLECT, EVENT, 3, False, "conflict")),
    P("a site in doubt about an attempt applies a peer's retry outcome",
      collecting(ballot("ann")), Outcome(COLLECT, EVENT, 3, False, RETRY),
      records=(Aborted(COLLECT, RETRY),), shows=VOTING),
    P("the next attempt's prepare proves the one held here was aborted to be retried: the site "
      "applies that abort, then prepares the new attempt with its ballots",
      collecting(ballot("ann")), prepare("1-r1-c2", replace(PUBLISH, attempt=2)),
      records=(Aborted(COLLECT, RETRY), Prepared("1-r1-c2", HOME, replace(PUBLISH, attempt=2))),
      timers=in_doubt_timer("1-r1-c2"), reply=answer("1-r1-c2", True, ballots=(ballot("ann"),))),
    P("an attempt from another home site proves nothing about the one held here",
      collecting(), prepare("3-r1-c2", replace(PUBLISH, attempt=2), coordinator=3),
      records=(Refused("3-r1-c2", 3, "conflict"),), reply=answer("3-r1-c2", False, "conflict")),
    P("a peer asked about an aborted collection says abort with its reason",
      round_aborted(), Query(COLLECT, EVENT, 3, HOME),
      reply=Outcome(COLLECT, EVENT, HERE, False, "rejected")),
)


@table(*ENDING)
def test_a_participant_opens_publishes_or_ends_a_round_as_the_decision_says(row):
    check_participant(row)


@pytest.mark.parametrize("prepared_here", [True, False], ids=["prepared", "never prepared"])
@pytest.mark.parametrize("reason, shown", [
    ("rejected", "rejected"),
    ("timeout", "timeout"),
    ("unreachable", "unreachable"),
    ("coordinator_restarted", "unreachable"),
    ("no_such_round", "unreachable"),
    ("refused", "unreachable"),
    (None, "unreachable"),
])
def test_an_aborted_round_shows_rejected_timeout_or_unreachable_for_any_other_reason(
        reason, shown, prepared_here):
    history = collecting() if prepared_here else voting()
    state = fold_all(EventState(EVENT), history)
    result = participant.step(state, Decision(COLLECT, EVENT, False, reason, PUBLISH),
                              PARTICIPANT_CONFIG, NOW)
    assert result.state.round is None
    assert result.state.last_outcome == RoundOutcome(1, "aborted", shown)


def test_a_published_event_keeps_the_round_version_and_refuses_every_later_change():
    state = fold_all(EventState(EVENT), published())
    assert state.published_version == 2 == state.version
    for message in (prepare("t-start-2", replace(START, round=2)), cast("bob"),
                    prepare("t-up-2", upload(2, "cat"), coordinator=3)):
        state = participant.step(state, message, PARTICIPANT_CONFIG, NOW).state
    assert state.published_version == 2 and state.version == 2 and state.round is None


def test_an_abort_of_the_collection_that_overtakes_the_round_start_still_ends_the_round():
    state = fold_all(EventState(EVENT), [*open_event(), Prepared(START_TXN, HOME, START)])
    # The collection reaches this site while its round start is in doubt here; it is refused
    # and aborted, and the abort (sent at once) overtakes the round start's resent commit.
    for message in (prepare(COLLECT, PUBLISH),
                    Decision(COLLECT, EVENT, False, "no_such_round", PUBLISH),
                    Decision(START_TXN, EVENT, True, None, START)):
        state = participant.step(state, message, PARTICIPANT_CONFIG, NOW).state
    assert state.round is None, "round 1 stays open here while every other site ended it"
    assert state.last_outcome == RoundOutcome(1, "aborted", "unreachable")


# --- the coordinator at the home site ------------------------------------------------------------


def site_vote(site: int, txn_id: str = COLLECT, *ballots: Ballot) -> Vote:
    return Vote(txn_id, EVENT, site, True, None, tuple(ballots))


def site_no(site: int, reason: str, txn_id: str = COLLECT) -> Vote:
    return Vote(txn_id, EVENT, site, False, reason)


def prepares(txn_id: str, payload) -> tuple[Send, ...]:
    return tuple(Send(s, Prepare(txn_id, EVENT, HOME, payload)) for s in SITES)


def decisions(txn_id: str, commit: bool, reason: str | None, payload,
              sites=SITES) -> tuple[Send, ...]:
    return tuple(Send(s, Decision(txn_id, EVENT, commit, reason, payload)) for s in sites)


def resend_timer(txn_id: str, attempt: int = 1) -> Timer:
    return Timer(TIMING.backoff(attempt), ResendDecision(txn_id, attempt))


def collection_begins() -> dict:
    """What a step that begins the collection does: store Began, prepare every site."""
    return dict(records=(Began(COLLECT, PUBLISH, SITES),), send=prepares(COLLECT, PUBLISH),
                timers=(Timer(TIMING.prepare_timeout_s, PrepareTimeout(COLLECT)),))


def report(user: str, decision: str = ACCEPT, site: int = 2, at: float = NOW,
           round_number: int = 1) -> VoteReport:
    return VoteReport(EVENT, round_number, Ballot(user, decision, at, site))


def stored(r: VoteReport) -> Reported:
    return Reported(r.round, r.ballot)


def acked(r: VoteReport) -> ReportAck:
    return ReportAck(EVENT, r.round, r.ballot.user)


COLLECT_2 = "1-r1-c2"  # the second attempt at collecting round 1
PUBLISH_2 = replace(PUBLISH, attempt=2)
RETRY_TIMER = Timer(TIMING.backoff(1), CollectAgain(1, 2))
PAST_GRACE = DEADLINE + TIMING.collect_grace_s


def collection_aborted(reason: str) -> dict:
    """A final abort: the round ends everywhere (its reason shows)."""
    return dict(records=(Decided(COLLECT, False, reason),),
                send=decisions(COLLECT, False, reason, PUBLISH), timers=(resend_timer(COLLECT),),
                finished=(Finished(COLLECT, False, reason),))


def collection_retried() -> dict:
    """An attempt aborted for a site's sake before the deadline plus the grace period: the
    round goes on, and the next attempt begins after a back-off."""
    return dict(records=(Decided(COLLECT, False, RETRY),),
                send=decisions(COLLECT, False, RETRY, PUBLISH),
                timers=(resend_timer(COLLECT), RETRY_TIMER),
                finished=(Finished(COLLECT, False, RETRY),))


def second_attempt_begins() -> dict:
    return dict(records=(Began(COLLECT_2, PUBLISH_2, SITES),), send=prepares(COLLECT_2, PUBLISH_2),
                timers=(Timer(TIMING.prepare_timeout_s, PrepareTimeout(COLLECT_2)),))


STARTING = [Began(START_TXN, START, SITES)]
ROUND_OPEN = [*STARTING, Decided(START_TXN, True, None),
              Acknowledged(START_TXN, SITES)]
COLLECTING = [*ROUND_OPEN, Began(COLLECT, PUBLISH, SITES)]
ROUND_ENDED = [*COLLECTING, Decided(COLLECT, False, "rejected"),
               Acknowledged(COLLECT, SITES)]


@dataclass(frozen=True)
class CoordinatorRow:
    description: str
    history: list  # records stored, then messages heard since the last start (volatile state)
    message: object
    records: tuple = ()
    send: tuple = ()
    timers: tuple = ()
    reply: object = None
    finished: tuple = ()
    round: object = UNCHECKED  # the round afterwards: "open", "collecting" or None
    now: float = NOW


def durable(state: CoordinatorState) -> CoordinatorState:
    """What a crash keeps: not the votes heard, their ballots, nor whether the client heard."""
    txns = {t: replace(txn, yes=frozenset(), heard=frozenset(), ballots=(), answered=False)
            for t, txn in state.txns.items()}
    return replace(state, txns=txns)


def given(history: list, now: float = NOW) -> CoordinatorState:
    state = CoordinatorState(EVENT)
    for item in history:
        if isinstance(item, (Began, Decided, Acknowledged, Reported)):
            state = coordinator.fold(state, item)
        else:
            state = coordinator.step(state, item, HOME_CONFIG, now).state
    return state


def round_phase(state: CoordinatorState):
    if state.active is None:
        return None
    return "collecting" if state.active.collecting else "open"


def check_coordinator(row: CoordinatorRow) -> None:
    before = given(row.history, row.now)
    result = coordinator.step(before, row.message, HOME_CONFIG, row.now)
    assert result.records == row.records
    assert result.send == row.send
    assert result.timers == row.timers
    assert result.reply == row.reply
    assert result.finished == row.finished
    assert durable(result.state) == durable(coordinator.fold_all(before, result.records))
    if row.round is not UNCHECKED:
        assert round_phase(result.state) == row.round


C = CoordinatorRow
ACK_WAIT = Timer(TIMING.ack_wait_s, AckWaitOver(START_TXN))

STARTING_ROUNDS = (
    C("the home site stores Began before sending the round start's prepares",
      [], Begin(START_TXN, EVENT, START, SITES),
      records=(STARTING[0],), send=prepares(START_TXN, START),
      timers=(Timer(TIMING.prepare_timeout_s, PrepareTimeout(START_TXN)),), round=None),
    C("a committed round start opens the round and sets the deadline timer, deadline minus now "
      "away",
      [*STARTING, site_vote(1, START_TXN), site_vote(2, START_TXN)], site_vote(3, START_TXN),
      records=(Decided(START_TXN, True, None),),
      send=(*decisions(START_TXN, True, None, START), *relayed()),
      timers=(resend_timer(START_TXN), ACK_WAIT, Timer(DEADLINE - NOW, RoundDeadline(1))),
      round="open"),
    C("a round start committed after its deadline sets a deadline timer of zero",
      [*STARTING, site_vote(1, START_TXN), site_vote(2, START_TXN)], site_vote(3, START_TXN),
      now=DEADLINE + 7,
      records=(Decided(START_TXN, True, None),),
      send=(*decisions(START_TXN, True, None, START), *relayed()),
      timers=(resend_timer(START_TXN), ACK_WAIT, Timer(0.0, RoundDeadline(1))), round="open"),
    C("the accept a round start carries counts as reported once the round is open",
      [Began(START_TXN, OPENED, SITES), site_vote(1, START_TXN), site_vote(2, START_TXN)],
      site_vote(3, START_TXN),
      records=(Decided(START_TXN, True, None),),
      send=(*decisions(START_TXN, True, None, OPENED), *relayed(OPENED.ballot)),
      timers=(resend_timer(START_TXN), ACK_WAIT, Timer(DEADLINE - NOW, RoundDeadline(1))),
      round="open"),
    C("a round whose only submitter opened it collects as soon as it is open",
      [Began(START_TXN, ALONE, SITES), site_vote(1, START_TXN), site_vote(2, START_TXN)],
      site_vote(3, START_TXN),
      records=(Decided(START_TXN, True, None), Began(COLLECT, ALONE_PUBLISH, SITES)),
      send=(*decisions(START_TXN, True, None, ALONE), *relayed(ALONE.ballot),
            *prepares(COLLECT, ALONE_PUBLISH)),
      timers=(resend_timer(START_TXN), ACK_WAIT, Timer(DEADLINE - NOW, RoundDeadline(1)),
              Timer(TIMING.prepare_timeout_s, PrepareTimeout(COLLECT))),
      round="collecting"),
    C("an aborted round start opens no round and sets no deadline",
      [*STARTING, site_vote(1, START_TXN)], site_no(2, "voting_in_progress", START_TXN),
      records=(Decided(START_TXN, False, "voting_in_progress"),),
      send=decisions(START_TXN, False, "voting_in_progress", START),
      timers=(resend_timer(START_TXN),),
      finished=(Finished(START_TXN, False, "voting_in_progress"),), round=None),
)


@table(*STARTING_ROUNDS)
def test_the_home_site_starts_a_round_by_two_phase_commit_and_waits_for_its_deadline(row):
    check_coordinator(row)


REPORTS = (
    C("a reported accept is stored, acknowledged and relayed while other submitters have not voted",
      ROUND_OPEN, report("ann"), records=(stored(report("ann")),),
      send=relayed(report("ann").ballot), reply=acked(report("ann")), round="open"),
    C("a reported reject is stored and starts the collection at once",
      ROUND_OPEN, report("bob", REJECT),
      **{**collection_begins(),
         "records": (stored(report("bob", REJECT)), Began(COLLECT, PUBLISH, SITES)),
         "send": (*relayed(report("bob", REJECT).ballot), *prepares(COLLECT, PUBLISH))},
      reply=acked(report("bob", REJECT)), round="collecting"),
    C("the report of the other submitter's accept after the opening one starts the collection",
      [Began(START_TXN, OPENED, SITES), Decided(START_TXN, True, None)], report("bob", site=1),
      **{**collection_begins(),
         "records": (stored(report("bob", site=1)), Began(COLLECT, PUBLISH, SITES)),
         "send": (*relayed(OPENED.ballot, report("bob", site=1).ballot), *prepares(COLLECT, PUBLISH))},
      reply=acked(report("bob")), round="collecting"),
    C("the report of the last submitter's accept starts the collection at once",
      [*ROUND_OPEN, stored(report("ann", site=3))], report("bob", site=1),
      **{**collection_begins(),
         "records": (stored(report("bob", site=1)), Began(COLLECT, PUBLISH, SITES)),
         "send": (*relayed(report("ann", site=3).ballot, report("bob", site=1).ballot),
                  *prepares(COLLECT, PUBLISH))},
      reply=acked(report("bob")), round="collecting"),
    C("a duplicate report is acknowledged again and changes nothing",
      [*ROUND_OPEN, stored(report("ann"))], report("ann"), reply=acked(report("ann")), round="open"),
    C("a duplicate report changes nothing even when it says otherwise",
      [*ROUND_OPEN, stored(report("ann"))], report("ann", REJECT), reply=acked(report("ann")),
      round="open"),
    C("a person has one ballot: a report of theirs from another site changes nothing",
      [*ROUND_OPEN, stored(report("ann", site=2))], report("ann", REJECT, site=3),
      reply=acked(report("ann")), round="open"),
    C("a reject reported as cast after the deadline is stored but decides nothing",
      ROUND_OPEN, report("bob", REJECT, at=DEADLINE + 1),
      records=(stored(report("bob", REJECT, at=DEADLINE + 1)),),
      send=relayed(report("bob", REJECT, at=DEADLINE + 1).ballot), reply=acked(report("bob")),
      round="open"),
    C("a report of another round is acknowledged and changes nothing",
      ROUND_OPEN, report("bob", REJECT, round_number=2),
      reply=acked(report("bob", round_number=2)), round="open"),
    C("a report while no round runs is acknowledged and changes nothing",
      STARTING, report("bob", REJECT), reply=acked(report("bob")), round=None),
    C("a report after the collection began is acknowledged (its vote travels in the collection)",
      COLLECTING, report("bob", REJECT), reply=acked(report("bob")), round="collecting"),
    C("a report after the round ended is acknowledged and changes nothing",
      ROUND_ENDED, report("bob", REJECT), reply=acked(report("bob")), round=None),
)


@table(*REPORTS)
def test_the_home_site_stores_reports_and_collects_as_soon_as_they_decide(row):
    check_coordinator(row)


ANN, BOB = ballot("ann", site=2), ballot("bob", site=3)
ALL_YES = [*COLLECTING, site_vote(1), site_vote(2, COLLECT, ANN)]

COLLECTING_ROWS = (
    C("the deadline starts the collection",
      ROUND_OPEN, RoundDeadline(1), now=DEADLINE, **collection_begins(), round="collecting"),
    C("the deadline starts the collection even with reports stored",
      [*ROUND_OPEN, stored(report("ann"))], RoundDeadline(1), now=DEADLINE,
      **collection_begins(), round="collecting"),
    C("the deadline of another round changes nothing",
      ROUND_OPEN, RoundDeadline(2), now=DEADLINE, round="open"),
    C("the deadline after the collection began changes nothing",
      COLLECTING, RoundDeadline(1), now=DEADLINE, round="collecting"),
    C("the deadline after the round ended changes nothing",
      ROUND_ENDED, RoundDeadline(1), now=DEADLINE, round=None),
    C("a collection yes waits for the other sites",
      COLLECTING, site_vote(2, COLLECT, ANN), round="collecting"),
    C("every site's yes with every submitter's accept publishes: the collection commits",
      ALL_YES, site_vote(3, COLLECT, BOB),
      records=(Decided(COLLECT, True, None),), send=decisions(COLLECT, True, None, PUBLISH),
      timers=(resend_timer(COLLECT), Timer(TIMING.ack_wait_s, AckWaitOver(COLLECT))),
      round=None),
    C("ballots are tallied over every site's yes: both accepts at one site publish",
      [*COLLECTING, site_vote(1), site_vote(2)], site_vote(3, COLLECT, ballot("ann", site=3), BOB),
      records=(Decided(COLLECT, True, None),), send=decisions(COLLECT, True, None, PUBLISH),
      timers=(resend_timer(COLLECT), Timer(TIMING.ack_wait_s, AckWaitOver(COLLECT)))),
    C("a reject carried by any site's yes aborts the collection as rejected; every site hears "
      "it with the round's payload",
      ALL_YES, site_vote(3, COLLECT, BOB, ballot("eve", REJECT, site=3)),
      **collection_aborted("rejected"), round=None),
    C("a person's accept at one site and reject at another aborts as rejected",
      ALL_YES, site_vote(3, COLLECT, BOB, ballot("ann", REJECT, site=3)),
      **collection_aborted("rejected")),
    C("a missing accept aborts the collection as timeout",
      ALL_YES, site_vote(3), **collection_aborted("timeout"), round=None),
    C("an accept cast after the deadline does not count: timeout",
      ALL_YES, site_vote(3, COLLECT, ballot("bob", at=DEADLINE + 1, site=3)),
      **collection_aborted("timeout")),
    C("a reject cast after the deadline does not count: unanimous accepts in time publish",
      ALL_YES, site_vote(3, COLLECT, BOB, ballot("ann", REJECT, at=DEADLINE + 1, site=3)),
      records=(Decided(COLLECT, True, None),), send=decisions(COLLECT, True, None, PUBLISH),
      timers=(resend_timer(COLLECT), Timer(TIMING.ack_wait_s, AckWaitOver(COLLECT)))),
    C("a duplicate collection yes does not count its ballots twice nor complete the vote",
      ALL_YES, site_vote(2, COLLECT, ANN), round="collecting"),
    C("one site's no aborts the attempt, to be retried: the round goes on",
      [*COLLECTING, site_vote(1)], site_no(3, "conflict"), **collection_retried(), round="open"),
    C("a site that cannot be reached aborts the attempt, to be retried",
      ALL_YES, Unreachable(3, Prepare(COLLECT, EVENT, HOME, PUBLISH)), **collection_retried(),
      round="open"),
    C("a prepare timeout aborts the attempt, to be retried, after the deadline too",
      ALL_YES, PrepareTimeout(COLLECT), now=DEADLINE + 1, **collection_retried(), round="open"),
    C("a site still unreachable the grace period after the deadline ends the round as unreachable",
      ALL_YES, PrepareTimeout(COLLECT), now=PAST_GRACE, **collection_aborted("unreachable"),
      round=None),
    C("the next attempt begins after the back-off, with an id built from its number",
      [*COLLECTING, Decided(COLLECT, False, RETRY)], CollectAgain(1, 2), **second_attempt_begins(),
      round="collecting"),
    C("a retry timer for an attempt already begun changes nothing",
      [*COLLECTING, Decided(COLLECT, False, RETRY), Began(COLLECT_2, PUBLISH_2, SITES)],
      CollectAgain(1, 2), round="collecting"),
    C("a retry timer after the round ended changes nothing",
      ROUND_ENDED, CollectAgain(1, 2), round=None),
    C("reports count again once an attempt failed: the deciding one collects at once",
      [*COLLECTING, Decided(COLLECT, False, RETRY)], report("ann", REJECT),
      **{**second_attempt_begins(),
         "records": (stored(report("ann", REJECT)), Began(COLLECT_2, PUBLISH_2, SITES)),
         "send": (*relayed(report("ann", REJECT).ballot), *prepares(COLLECT_2, PUBLISH_2))},
      reply=acked(report("ann")), round="collecting"),
    C("a later attempt that every site answers with every accept publishes",
      [*COLLECTING, Decided(COLLECT, False, RETRY), Began(COLLECT_2, PUBLISH_2, SITES),
       site_vote(1, COLLECT_2), site_vote(2, COLLECT_2, ANN)], site_vote(3, COLLECT_2, BOB),
      records=(Decided(COLLECT_2, True, None),), send=decisions(COLLECT_2, True, None, PUBLISH_2),
      timers=(resend_timer(COLLECT_2), Timer(TIMING.ack_wait_s, AckWaitOver(COLLECT_2))),
      round=None),
    C("a query about the collection while it is undecided is answered not known yet",
      ALL_YES, Query(COLLECT, EVENT, 2, HOME), reply=Outcome(COLLECT, EVENT, HOME, None)),
    C("a query about an aborted collection is answered abort with its reason and payload",
      ROUND_ENDED, Query(COLLECT, EVENT, 2, HOME),
      reply=Outcome(COLLECT, EVENT, HOME, False, "rejected", PUBLISH)),
)


@table(*COLLECTING_ROWS)
def test_the_home_site_collects_every_sites_ballots_and_the_tally_decides(row):
    check_coordinator(row)


RECOVERING = (
    C("after a restart the count is relayed again and the deadline re-scheduled from the stored one",
      ROUND_OPEN, Recover(), send=relayed(), timers=(Timer(DEADLINE - NOW, RoundDeadline(1)),),
      round="open"),
    C("after a restart past the deadline the round is collected at once",
      ROUND_OPEN, Recover(), now=DEADLINE + 60,
      **{**collection_begins(), "send": (*relayed(), *prepares(COLLECT, PUBLISH))},
      round="collecting"),
    C("after a restart the round start's commit is resent and the deadline re-scheduled",
      [*STARTING, Decided(START_TXN, True, None), Acknowledged(START_TXN, (2,))], Recover(),
      send=(*decisions(START_TXN, True, None, START, sites=(1, 3)), *relayed()),
      timers=(resend_timer(START_TXN), Timer(DEADLINE - NOW, RoundDeadline(1))), round="open"),
    C("after a restart an undecided collection is aborted to be retried, and retried at once",
      COLLECTING, Recover(),
      records=(Decided(COLLECT, False, RETRY), Began(COLLECT_2, PUBLISH_2, SITES)),
      send=(*decisions(COLLECT, False, RETRY, PUBLISH), *relayed(), *prepares(COLLECT_2, PUBLISH_2)),
      timers=(resend_timer(COLLECT), RETRY_TIMER, Timer(TIMING.prepare_timeout_s, PrepareTimeout(COLLECT_2))),
      finished=(Finished(COLLECT, False, RETRY),), round="collecting"),
    C("after a restart past the grace period an undecided collection ends the round",
      COLLECTING, Recover(), now=PAST_GRACE, **collection_aborted("unreachable"), round=None),
    C("after a restart a decided collection is resent, never tallied again",
      [*COLLECTING, Decided(COLLECT, True, None), Acknowledged(COLLECT, (1,))], Recover(),
      send=decisions(COLLECT, True, None, PUBLISH, sites=(2, 3)),
      timers=(resend_timer(COLLECT),), round=None),
    C("after a restart once the round ended nothing is collected or awaited",
      ROUND_ENDED, Recover(), round=None),
    C("after a restart the stored reports still count: a duplicate changes nothing",
      [*ROUND_OPEN, stored(report("ann")), Recover()], report("ann"), reply=acked(report("ann")),
      round="open"),
    C("after a restart the stored reports still count: the last accept collects at once",
      [*ROUND_OPEN, stored(report("ann")), Recover()], report("bob", site=3),
      **{**collection_begins(),
         "records": (stored(report("bob", site=3)), Began(COLLECT, PUBLISH, SITES)),
         "send": (*relayed(report("ann").ballot, report("bob", site=3).ballot),
                  *prepares(COLLECT, PUBLISH))},
      reply=acked(report("bob")), round="collecting"),
)


@table(*RECOVERING)
def test_the_home_site_recovers_its_round_from_the_log(row):
    check_coordinator(row)
