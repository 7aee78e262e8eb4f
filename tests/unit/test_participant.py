"""The participant of two-phase commit, as tables: given what it has stored, a message in, and
what it must store, send, schedule and answer. Each row's description is a sentence of the
protocol; every row also checks the step's contract: the new state is the fold of the records."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain import participant
from domain.config import SiteConfig
from domain.event_state import EventState, fold_all
from domain.messages import (
    Ack,
    AddPhotos,
    AskOutcome,
    CheckedPrepare,
    CreateEvent,
    Decision,
    Outcome,
    PhotoMeta,
    Prepare,
    Query,
    Recover,
    Unreachable,
    Vote,
)
from domain.records import Aborted, Committed, Prepared, Refused
from domain.step import Alarm, Send, Timer

EVENT = "ev-picnic"
HOME = 1
HERE = 2
CONFIG = SiteConfig(site=HERE, sites=(1, 2, 3, 4), max_contributors=10)
TIMING = CONFIG.timing
CREATE = CreateEvent(title="Picnic", home_site=HOME, created_at="2024-06-01T12:00:00+00:00")


def photo(n: int, submitter: str) -> PhotoMeta:
    return PhotoMeta(f"photo-{n}", f"sha-{n}", f"thumb-{n}", submitter, site=3)


def upload(base_version: int, *submitters: str) -> AddPhotos:
    photos = tuple(photo(base_version + i, s) for i, s in enumerate(submitters))
    return AddPhotos(base_version, photos)


def created() -> list:
    """The records of a site that holds the event (created by the home site)."""
    return [Prepared("t-create", HOME, CREATE), Committed("t-create")]


def created_with(*submitters: str) -> list:
    """The records of a site that holds the event and one committed photo per submitter."""
    records = created()
    for version, submitter in enumerate(submitters):
        records += [Prepared(f"t-old-{version}", 3, upload(version, submitter)),
                    Committed(f"t-old-{version}")]
    return records


UPLOAD = upload(1, "bob")
PREPARED_UPLOAD = [*created_with("ann"), Prepared("t-up", 3, UPLOAD)]
TEN_SUBMITTERS = [f"user-{i}" for i in range(10)]


def prepare(txn_id: str, payload, coordinator: int = 3) -> Prepare:
    return Prepare(txn_id, EVENT, coordinator, payload)


def checked(txn_id: str, payload, *missing: str) -> CheckedPrepare:
    """A prepare as the site hands it over, having looked for the files it names."""
    return CheckedPrepare(prepare(txn_id, payload), tuple(missing))


def vote(txn_id: str, yes: bool, reason: str | None = None) -> Vote:
    return Vote(txn_id, EVENT, HERE, yes, reason)


def ack(txn_id: str) -> Ack:
    return Ack(txn_id, EVENT, HERE)


def query_from(site: int, txn_id: str, coordinator: int = 3) -> Query:
    return Query(txn_id, EVENT, site, coordinator)


def asked(txn_id: str, coordinator: int, *sites: int) -> tuple[Send, ...]:
    return tuple(Send(s, Query(txn_id, EVENT, HERE, coordinator)) for s in sites)


def ask_again(txn_id: str, attempt: int) -> tuple[Timer, ...]:
    delay = TIMING.backoff(attempt - 1) + TIMING.in_doubt_s
    return (Timer(delay, AskOutcome(txn_id, attempt)),)


IN_DOUBT_TIMER = (Timer(TIMING.in_doubt_s, AskOutcome("t-up", 1)),)


@dataclass(frozen=True)
class Row:
    description: str
    history: list
    message: object
    records: tuple = ()
    send: tuple = ()
    timers: tuple = ()
    reply: object = None
    alarms: tuple = ()


def table(*rows: Row):
    return pytest.mark.parametrize("row", rows, ids=[r.description for r in rows])


def run(row: Row):
    before = fold_all(EventState(EVENT), row.history)
    return before, participant.step(before, row.message, CONFIG)


def check(row: Row) -> None:
    before, result = run(row)
    assert result.records == row.records
    assert result.send == row.send
    assert result.timers == row.timers
    assert result.reply == row.reply
    assert result.finished == ()
    assert result.alarms == row.alarms
    assert result.state == fold_all(before, result.records)


VOTING = (
    Row("a participant votes yes on an upload built on its version and stores Prepared "
        "before replying",
        created_with("ann"), prepare("t-up", UPLOAD),
        records=(Prepared("t-up", 3, UPLOAD),), timers=IN_DOUBT_TIMER,
        reply=vote("t-up", True)),
    Row("a participant votes yes on creating an event it does not hold yet",
        [], prepare("t-create", CREATE, coordinator=HOME),
        records=(Prepared("t-create", HOME, CREATE),),
        timers=(Timer(TIMING.in_doubt_s, AskOutcome("t-create", 1)),),
        reply=vote("t-create", True)),
    Row("a prepare to create an event that already exists is refused",
        created(), prepare("t-again", CREATE, coordinator=HOME),
        records=(Refused("t-again", HOME, "event_exists"),),
        reply=vote("t-again", False, "event_exists")),
    Row("a prepare to create an event while another creation is prepared is refused",
        [Prepared("t-create", HOME, CREATE)], prepare("t-other", CREATE, coordinator=4),
        records=(Refused("t-other", 4, "event_exists"),),
        reply=vote("t-other", False, "event_exists")),
    Row("an upload to an event this site does not hold is refused as unknown_event",
        [], prepare("t-up", upload(0, "bob")),
        records=(Refused("t-up", 3, "unknown_event"),),
        reply=vote("t-up", False, "unknown_event")),
    Row("a duplicate prepare gets the same answer and stores nothing",
        PREPARED_UPLOAD, prepare("t-up", UPLOAD),
        reply=vote("t-up", True)),
    Row("a duplicate of a refused prepare gets the same refusal and stores nothing",
        [*created_with("ann", "cat"), Refused("t-up", 3, "conflict")], prepare("t-up", UPLOAD),
        reply=vote("t-up", False, "conflict")),
    Row("a prepare on a stale base version is refused with conflict",
        created_with("ann", "cat"), prepare("t-up", UPLOAD),
        records=(Refused("t-up", 3, "conflict"),), reply=vote("t-up", False, "conflict")),
    Row("a prepare built on a version this site has not reached is refused with conflict",
        created(), prepare("t-up", UPLOAD),
        records=(Refused("t-up", 3, "conflict"),), reply=vote("t-up", False, "conflict")),
    Row("a second transaction is refused while one is prepared",
        PREPARED_UPLOAD, prepare("t-second", upload(1, "cat"), coordinator=4),
        records=(Refused("t-second", 4, "conflict"),),
        reply=vote("t-second", False, "conflict")),
    Row("a transaction is admitted again once the prepared one has aborted",
        [*PREPARED_UPLOAD, Aborted("t-up", "unreachable")], prepare("t-second", upload(1, "cat")),
        records=(Prepared("t-second", 3, upload(1, "cat")),),
        timers=(Timer(TIMING.in_doubt_s, AskOutcome("t-second", 1)),),
        reply=vote("t-second", True)),
    Row("the contributor limit refuses an eleventh submitter",
        created_with(*TEN_SUBMITTERS), prepare("t-up", upload(10, "eleventh")),
        records=(Refused("t-up", 3, "contributor_limit"),),
        reply=vote("t-up", False, "contributor_limit")),
    Row("the contributor limit counts every submitter in one upload",
        created_with(*TEN_SUBMITTERS[:9]), prepare("t-up", upload(9, "tenth", "eleventh")),
        records=(Refused("t-up", 3, "contributor_limit"),),
        reply=vote("t-up", False, "contributor_limit")),
    Row("the contributor limit admits more photos from a submitter already counted",
        created_with(*TEN_SUBMITTERS), prepare("t-up", upload(10, "user-3")),
        records=(Prepared("t-up", 3, upload(10, "user-3")),), timers=IN_DOUBT_TIMER,
        reply=vote("t-up", True)),
    Row("a site that holds every file an upload names votes yes on it",
        created_with("ann"), checked("t-up", UPLOAD),
        records=(Prepared("t-up", 3, UPLOAD),), timers=IN_DOUBT_TIMER,
        reply=vote("t-up", True)),
    Row("a site that lacks a file an upload names refuses it durably as missing_photos",
        created_with("ann"), checked("t-up", UPLOAD, "thumb-1"),
        records=(Refused("t-up", 3, "missing_photos"),),
        reply=vote("t-up", False, "missing_photos")),
    Row("a copy of a prepare refused for missing files gets the same no, even once they arrived",
        [*created_with("ann"), Refused("t-up", 3, "missing_photos")], checked("t-up", UPLOAD),
        reply=vote("t-up", False, "missing_photos")),
    Row("a copy of a prepare voted yes gets a yes, even if a file went missing since",
        PREPARED_UPLOAD, checked("t-up", UPLOAD, "sha-1"),
        reply=vote("t-up", True)),
    Row("a lock or a stale version is told before missing files: the coordinator retries",
        PREPARED_UPLOAD, checked("t-second", upload(1, "cat"), "sha-1"),
        records=(Refused("t-second", 3, "conflict"),),
        reply=vote("t-second", False, "conflict")),
    Row("files a creation would not name do not matter to it",
        [], CheckedPrepare(prepare("t-create", CREATE, coordinator=HOME)),
        records=(Prepared("t-create", HOME, CREATE),),
        timers=(Timer(TIMING.in_doubt_s, AskOutcome("t-create", 1)),),
        reply=vote("t-create", True)),
    Row("a decision for an unknown transaction that aborts is remembered so a late prepare "
        "is refused",
        [*created_with("ann"), Aborted("t-up", "unreachable")], prepare("t-up", UPLOAD),
        reply=vote("t-up", False, "aborted")),
)


@table(*VOTING)
def test_a_participant_votes_by_the_admission_rules_and_answers_duplicates_alike(row):
    check(row)


DECIDING = (
    Row("a commit decision applies the prepared upload and is acknowledged",
        PREPARED_UPLOAD, Decision("t-up", EVENT, True, None, UPLOAD),
        records=(Committed("t-up"),), reply=ack("t-up")),
    Row("an abort decision releases the prepared transaction and is acknowledged",
        PREPARED_UPLOAD, Decision("t-up", EVENT, False, "unreachable", UPLOAD),
        records=(Aborted("t-up", "unreachable", UPLOAD),), reply=ack("t-up")),
    Row("an abort decision for a refused transaction is remembered and acknowledged",
        [*created_with("ann", "cat"), Refused("t-up", 3, "conflict")],
        Decision("t-up", EVENT, False, "conflict", UPLOAD),
        records=(Aborted("t-up", "conflict", UPLOAD),), reply=ack("t-up")),
    Row("a decision for an unknown transaction that aborts is stored and acknowledged",
        created(), Decision("t-late", EVENT, False, "unreachable", UPLOAD),
        records=(Aborted("t-late", "unreachable", UPLOAD),), reply=ack("t-late")),
    Row("an abort of another transaction leaves the prepared one locked",
        PREPARED_UPLOAD, Decision("t-other", EVENT, False, "conflict", UPLOAD),
        records=(Aborted("t-other", "conflict", UPLOAD),), reply=ack("t-other")),
    Row("a duplicate commit decision is acknowledged again and stores nothing",
        [*PREPARED_UPLOAD, Committed("t-up")], Decision("t-up", EVENT, True, None, UPLOAD),
        reply=ack("t-up")),
    Row("a duplicate abort decision is acknowledged again and stores nothing",
        [*PREPARED_UPLOAD, Aborted("t-up", "unreachable")],
        Decision("t-up", EVENT, False, "unreachable", UPLOAD),
        reply=ack("t-up")),
)


@table(*DECIDING)
def test_a_participant_applies_a_decision_once_and_always_acknowledges_it(row):
    check(row)


def alarm(txn_id: str, problem: str) -> tuple[Alarm, ...]:
    return (Alarm(EVENT, txn_id, problem),)


CANNOT_APPLY = (
    Row("a commit of a transaction never prepared here is not acknowledged and raises an alarm",
        created_with("ann"), Decision("t-up", EVENT, True, None, UPLOAD),
        alarms=alarm("t-up", "told to commit a transaction this site never prepared")),
    Row("a commit of another transaction than the one prepared here is not acknowledged",
        PREPARED_UPLOAD, Decision("t-other", EVENT, True, None, UPLOAD),
        alarms=alarm("t-other", "told to commit a transaction this site never prepared")),
    Row("a commit of a transaction this site refused is not acknowledged and raises an alarm",
        [*created_with("ann", "cat"), Refused("t-up", 3, "conflict")],
        Decision("t-up", EVENT, True, None, UPLOAD),
        alarms=alarm("t-up", "told to commit a transaction this site refused")),
    Row("a commit of a transaction this site aborted is not acknowledged and raises an alarm",
        [*PREPARED_UPLOAD, Aborted("t-up", "unreachable")], Decision("t-up", EVENT, True, None, UPLOAD),
        alarms=alarm("t-up", "told to commit a transaction this site has aborted")),
    Row("an abort of a transaction this site committed is not acknowledged and raises an alarm",
        [*PREPARED_UPLOAD, Committed("t-up")], Decision("t-up", EVENT, False, "unreachable", UPLOAD),
        alarms=alarm("t-up", "told to abort a transaction this site has committed")),
)


@table(*CANNOT_APPLY)
def test_a_participant_never_acknowledges_a_decision_it_cannot_apply(row):
    check(row)


def test_a_committed_upload_moves_every_photo_into_the_event_in_order():
    _, result = run(Row("", PREPARED_UPLOAD, Decision("t-up", EVENT, True, None, UPLOAD)))
    assert result.state.version == 2
    assert [p.photo_id for p in result.state.photos] == ["photo-0", "photo-1"]
    assert result.state.prepared is None


def test_an_abort_of_another_transaction_keeps_the_lock_of_the_prepared_one():
    _, result = run(Row("", PREPARED_UPLOAD, Decision("t-other", EVENT, False, "conflict")))
    assert result.state.prepared == Prepared("t-up", 3, UPLOAD)


IN_DOUBT = (
    Row("a prepared participant in doubt asks the coordinator and every peer",
        PREPARED_UPLOAD, AskOutcome("t-up", 1),
        send=asked("t-up", 3, 3, 1, 4), timers=ask_again("t-up", 2)),
    Row("a participant in doubt about a transaction its own site coordinates asks its own "
        "coordinator too",
        [*created_with("ann"), Prepared("t-up", HERE, UPLOAD)], AskOutcome("t-up", 1),
        send=asked("t-up", HERE, HERE, 1, 3, 4), timers=ask_again("t-up", 2)),
    Row("a participant still in doubt asks again after a longer wait each time",
        PREPARED_UPLOAD, AskOutcome("t-up", 4),
        send=asked("t-up", 3, 3, 1, 4), timers=ask_again("t-up", 5)),
    Row("a participant that learnt the outcome stops asking",
        [*PREPARED_UPLOAD, Committed("t-up")], AskOutcome("t-up", 2)),
    Row("a prepared participant restarting asks for the outcome at once",
        PREPARED_UPLOAD, Recover(),
        send=asked("t-up", 3, 3, 1, 4), timers=ask_again("t-up", 2)),
    Row("a participant restarting with nothing prepared does nothing",
        created_with("ann"), Recover()),
    Row("an outcome from a peer concludes a prepared transaction",
        PREPARED_UPLOAD, Outcome("t-up", EVENT, 4, commit=True),
        records=(Committed("t-up"),)),
    Row("an abort outcome from a peer concludes a prepared transaction",
        PREPARED_UPLOAD, Outcome("t-up", EVENT, 4, False, "unreachable"),
        records=(Aborted("t-up", "unreachable"),)),
    Row("an outcome from a peer that does not know yet changes nothing",
        PREPARED_UPLOAD, Outcome("t-up", EVENT, 4, commit=None)),
    Row("a late outcome for a transaction already concluded changes nothing",
        [*PREPARED_UPLOAD, Committed("t-up")], Outcome("t-up", EVENT, 4, commit=True)),
    Row("an outcome for a transaction never voted yes on changes nothing",
        created_with("ann"), Outcome("t-up", EVENT, 4, False, "unreachable")),
    Row("an unreachable peer changes nothing: the timer asks again",
        PREPARED_UPLOAD, Unreachable(4, Query("t-up", EVENT, HERE, 3))),
)


@table(*IN_DOUBT)
def test_a_participant_in_doubt_never_decides_alone_but_asks_until_it_knows(row):
    check(row)


QUERIES = (
    Row("a query about a committed transaction is answered commit",
        [*PREPARED_UPLOAD, Committed("t-up")], query_from(4, "t-up"),
        reply=Outcome("t-up", EVENT, HERE, True)),
    Row("a query about an aborted transaction is answered abort, with its reason",
        [*PREPARED_UPLOAD, Aborted("t-up", "unreachable")], query_from(4, "t-up"),
        reply=Outcome("t-up", EVENT, HERE, False, "unreachable")),
    Row("a query about a transaction this site refused is answered abort, with its reason",
        [*created_with("ann", "cat"), Refused("t-up", 3, "conflict")], query_from(4, "t-up"),
        reply=Outcome("t-up", EVENT, HERE, False, "conflict")),
    Row("a query about a transaction prepared here is answered with not known yet",
        PREPARED_UPLOAD, query_from(4, "t-up"),
        reply=Outcome("t-up", EVENT, HERE, None)),
    Row("a query about an unknown transaction is answered with not known yet: only the "
        "coordinator may presume abort",
        created(), query_from(4, "t-unknown"),
        reply=Outcome("t-unknown", EVENT, HERE, None)),
    Row("a message meant for the coordinator changes nothing at a participant",
        PREPARED_UPLOAD, Vote("t-up", EVENT, 4, True)),
)


@table(*QUERIES)
def test_a_participant_tells_a_peer_what_it_knows_of_a_transaction_and_stores_nothing(row):
    check(row)
