"""The checker on fabricated evidence: a clean story passes, and each planted violation of an
invariant is caught under its own name.

The story: two sites; user u1 creates an event at site 0 (its home), uploads one photo there,
accepts version 1 at site 1; round 1 is collected and publishes everywhere.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from domain.messages import AddPhotos, Ballot, CreateEvent, PhotoMeta, Publish, StartRound
from domain.records import Aborted, Acknowledged, Began, Committed, Decided, Prepared, VoteCast
from eventstore.store import LogEntry
from tests.chaos.checker import check, new
from tests.chaos.history import Op

EVENT = "0b9c7d36-9a4e-4a47-a93f-4a3c1c0d7e11"
SITES = (0, 1)
T0 = 1_700_000_000.0
DEADLINE = T0 + 10
PHOTO = PhotoMeta("p1", "a" * 64, "b" * 64, "u1", 0)
CREATE = ("0-create", CreateEvent("Picnic", 0, "2023-11-14T22:13:20+00:00"))
UPLOAD = ("0-upload", AddPhotos(0, (PHOTO,)))
START = ("0-start", StartRound(1, 1, DEADLINE, ("u1",)))
COLLECT = ("0-r1-c1", Publish(1, 1, DEADLINE, ("u1",)))
BALLOT = Ballot("u1", "accept", T0 + 5, 1)


def entry(role: str, record) -> LogEntry:
    return LogEntry(datetime.now(timezone.utc), role, type(record).__name__, record, {})


def committed(txn, payload, coordinator=0) -> list:
    return [Prepared(txn, coordinator, payload), Committed(txn)]


def coordinated(txn, payload, commit=True, reason=None) -> list:
    return [Began(txn, payload, SITES), Decided(txn, commit, reason),
            Acknowledged(txn, SITES)]


def story() -> dict:
    """Every site's records (participant and coordinator) for the clean story."""
    records = {}
    for site in SITES:
        participant = committed(*CREATE) + committed(*UPLOAD) + committed(*START)
        if site == 1:
            participant.append(VoteCast(1, BALLOT))
        participant += committed(*COLLECT)
        records[site] = [("participant", r) for r in participant]
    records[0] += [("coordinator", r) for txn in (CREATE, UPLOAD, START, COLLECT) for r in coordinated(*txn)]
    return records


def logs_of(records: dict) -> dict:
    return {EVENT: {site: [entry(role, r) for role, r in rs] for site, rs in records.items()}}


def view(site: int) -> dict:
    return {"state": "published", "montage_version": 1, "published_version": 1,
            "last_outcome": {"round": 1, "outcome": "published", "reason": None}, "site": site}


def op(index, f, site, value, outcome, result, at) -> Op:
    return Op(1, f, site, at - T0, at, {"user": "u1", **value}, outcome, at - T0 + 0.1, at + 0.1,
              result, index)


def history() -> list[Op]:
    return [
        op(0, "create", 0, {"title": "Picnic"}, "ok", {"status": 201, "event_id": EVENT}, T0),
        op(2, "upload", 0, {"event_id": EVENT, "shas": [PHOTO.sha256]}, "ok",
           {"status": 201, "montage_version": 1,
            "photos": [{"photo_id": "p1", "sha256": PHOTO.sha256, "version": 1}]}, T0 + 1),
        op(4, "vote", 1, {"event_id": EVENT, "version": 1, "decision": "accept"}, "ok",
           {"status": 200, "round": 1}, BALLOT.at - 0.05),
    ]


def run_checker(records=None, ops=None, views=None, digests=None, healing=None):
    return check(history() if ops is None else ops, logs_of(story() if records is None else records),
                 {EVENT: {s: view(s) for s in SITES}} if views is None else views,
                 digests or {}, healing or {"final_wall": DEADLINE + 5})


def invariants_named(violations) -> set[str]:
    return {v.invariant for v in violations}


def test_the_clean_story_has_no_violation():
    assert run_checker() == []


def test_an_acknowledged_photo_missing_everywhere_is_caught():
    upload_aborted = [Prepared(UPLOAD[0], 0, UPLOAD[1]), Aborted(UPLOAD[0])]  # yet its client had a 201
    records = {s: [("participant", r) for r in committed(*CREATE) + upload_aborted] for s in SITES}
    records[0] += [("coordinator", r) for r in coordinated(*CREATE) + coordinated(*UPLOAD, commit=False)]
    violations = run_checker(records, ops=history()[:2], views={})
    assert invariants_named(violations) == {"acknowledged"}, violations
    assert all("p1" in v.message and "op #2" in v.ops[0] for v in violations)


def test_two_sites_with_different_outcomes_for_one_transaction_are_caught():
    records = story()
    records[1] = [(role, Aborted(r.txn_id) if isinstance(r, Committed) and r.txn_id == COLLECT[0] else r)
                  for role, r in records[1]]
    violations = run_checker(records)
    assert "agreement" in invariants_named(violations), violations
    assert any(COLLECT[0] in v.message for v in violations)


def test_a_round_published_without_every_submitters_accept_is_caught():
    records = story()
    records[1] = [(role, r) for role, r in records[1] if not isinstance(r, VoteCast)]
    violations = run_checker(records, ops=history()[:2])
    assert "validity" in invariants_named(violations), violations


def test_a_round_published_despite_a_reject_is_caught():
    records = story()
    reject = replace(BALLOT, decision="reject")
    records[1] = [(role, VoteCast(1, reject) if isinstance(r, VoteCast) else r) for role, r in records[1]]
    ops = history()[:2] + [replace(history()[2], value={**history()[2].value, "decision": "reject"})]
    violations = run_checker(records, ops=ops)
    assert "validity" in invariants_named(violations), violations


def test_a_photo_committed_while_a_round_runs_is_caught():
    late = ("1-late", AddPhotos(1, (replace(PHOTO, photo_id="p2", sha256="c" * 64),)))
    records = story()
    for site in SITES:
        at = next(i for i, (_, r) in enumerate(records[site]) if isinstance(r, Committed) and r.txn_id == START[0])
        records[site][at + 1:at + 1] = [("participant", r) for r in committed(*late, coordinator=1)]
    violations = run_checker(records)
    assert "freeze" in invariants_named(violations), violations


def test_a_recorded_vote_missing_from_every_sites_log_is_caught():
    records = story()
    records[1] = [(role, r) for role, r in records[1] if not isinstance(r, VoteCast)]
    records[0][6:6] = [("participant", VoteCast(1, replace(BALLOT, site=0, at=T0 + 99)))]
    violations = run_checker(records)  # a vote by u1 is stored, but not the one its client was told of
    assert "finality" in invariants_named(violations), violations


def test_a_vote_forwarded_to_the_ballot_site_is_found_there():
    ops = history()
    ops[2] = replace(ops[2], site=0)  # cast at site 0, stored at u1's ballot site (1)
    assert run_checker(ops=ops) == []


def test_a_site_that_reads_an_older_state_after_a_newer_one_is_caught():
    def read(index, at, version):
        return op(index, "read", 1, {"event_id": EVENT}, "ok",
                  {"status": 200, "state": "open", "montage_version": version, "published_version": None,
                   "last_outcome": None, "is_submitter": True, "vote": None,
                   "photos": ["p1"][:version]}, at)
    violations = run_checker(ops=history() + [read(6, T0 + 2, 1), read(8, T0 + 3, 0)])
    assert "finality" in invariants_named(violations), violations


def test_a_read_of_a_state_the_sites_log_never_held_is_caught():
    def read(index, version, state="open"):
        return op(index, "read", 1, {"event_id": EVENT}, "ok",
                  {"status": 200, "state": state, "montage_version": version, "published_version": None,
                   "last_outcome": None, "is_submitter": True, "vote": None, "photos": []}, T0 + 2)
    assert run_checker(ops=history() + [read(6, 1)]) == []  # version 1, open: it was, once
    violations = run_checker(ops=history() + [read(6, 2)])
    assert [(v.invariant, v.sites) for v in violations] == [("finality", (1,))], violations


def test_a_refused_create_that_made_the_event_anyway_is_caught():
    ops = history()
    ops[0] = replace(ops[0], outcome="fail", result={"status": 503, "error": "site_unreachable"})
    violations = run_checker(ops=ops)
    assert [v.invariant for v in violations] == ["definite"], violations


def test_a_round_started_for_an_accept_refused_with_503_is_caught():
    now = time.time()  # the fabricated log's Began records are stamped now
    refused = Op(2, "vote", 1, 0.0, now - 1, {"event_id": EVENT, "user": "u1", "version": 1,
                                             "decision": "accept"},
                 "fail", 2.0, now + 1, {"status": 503, "error": "site_unreachable"}, 9)
    violations = run_checker(ops=history() + [refused])
    assert [v.invariant for v in violations] == ["definite"], violations
    assert new(violations) == violations


@pytest.mark.parametrize("message", [
    "Another site could not be reached, so nothing was changed. Try again.",
    "The change could not be confirmed in time; try again."])
def test_the_photos_of_a_refused_upload_that_were_committed_are_caught(message):
    ops = history()
    ops[1] = replace(ops[1], outcome="fail", result={"status": 503, "error": "site_unreachable",
                                                    "message": message})
    violations = run_checker(ops=ops)
    assert [v.invariant for v in violations] == ["definite"], violations


def test_a_transaction_left_in_doubt_after_healing_is_caught():
    records = story()
    records[1] = [(role, r) for role, r in records[1] if not (isinstance(r, Committed) and r.txn_id == COLLECT[0])]
    violations = run_checker(records, views={}, healing={"final_wall": DEADLINE + 60,
                                                         "in_doubt_left": {"1": [{"txn_id": COLLECT[0]}]}})
    assert "liveness" in invariants_named(violations), violations
    assert any(v.sites == (1,) and COLLECT[0] in v.message for v in violations)


@pytest.mark.parametrize("served", [
    {"montage_version": 2}, {"state": "open", "published_version": None}])
def test_a_site_serving_what_its_log_does_not_say_is_caught(served):
    views = {EVENT: {s: view(s) for s in SITES}}
    views[EVENT][0] = {**views[EVENT][0], **served}
    violations = run_checker(views=views)
    assert "finality" in invariants_named(violations), violations


def test_a_committed_photo_whose_file_is_missing_or_corrupt_is_caught(tmp_path):
    """Site 0 holds the right files; site 1 lost the photo and has a corrupt thumbnail."""
    files = {0: {"photos": b"photo", "thumbs": b"thumb"}, 1: {"thumbs": b"torn"}}
    photo = replace(PHOTO, sha256=hashlib.sha256(b"photo").hexdigest(),
                    thumb_sha256=hashlib.sha256(b"thumb").hexdigest())
    for site, kinds in files.items():
        for kind, data in kinds.items():
            sha = photo.sha256 if kind == "photos" else photo.thumb_sha256
            (tmp_path / f"site-{site}" / kind).mkdir(parents=True)
            (tmp_path / f"site-{site}" / kind / f"{sha}.jpg").write_bytes(data)
    records = {site: [(role, Prepared(r.txn_id, r.coordinator, AddPhotos(0, (photo,)))
                       if isinstance(r, Prepared) and r.txn_id == UPLOAD[0] else r) for role, r in rs]
               for site, rs in story().items()}
    ops = history()[:1]  # the upload's photo changed: leave its 201 out
    violations = check(ops, logs_of(records), {}, {}, {"final_wall": DEADLINE + 5},
                       {s: tmp_path / f"site-{s}" for s in SITES})
    assert [(v.invariant, v.sites) for v in violations] == [("acknowledged", (1,))] * 2, violations
    assert {v.message.split(": ")[1].split("/")[0] for v in violations} == {"photos", "thumbs"}


def test_the_indefinite_504_outcome_unknown_is_allowed_and_any_other_5xx_is_caught():
    vote = history()[2]
    unknown = replace(vote, outcome="info", result={"status": 504, "error": "outcome_unknown"})
    assert run_checker(ops=[*history()[:2], unknown]) == []
    broken = replace(vote, outcome="info", result={"status": 500, "error": "internal"})
    assert invariants_named(run_checker(ops=[*history()[:2], broken])) == {"api"}


def test_the_accept_a_round_opened_with_is_the_recorded_vote_of_its_site():
    """The accept at site 1 asked for the round, so the round's commit recorded it there."""
    opened = (START[0], replace(START[1], request="1-req", ballot=BALLOT))
    records = story()
    for site in SITES:
        records[site] = [(role, r) for role, r in records[site] if not isinstance(r, VoteCast)]
        records[site] = [(role, Prepared(r.txn_id, r.coordinator, opened[1])
                          if isinstance(r, Prepared) and r.txn_id == START[0] else r)
                         for role, r in records[site]]
    records[0] = [(role, Began(r.txn_id, opened[1], r.sites) if isinstance(r, Began) and r.txn_id == START[0]
                   else r) for role, r in records[0]]
    assert run_checker(records) == []
    at = next(i for i, (_, r) in enumerate(records[0]) if isinstance(r, Committed) and r.txn_id == START[0])
    second = replace(BALLOT, decision="reject", at=BALLOT.at + 1, site=0)
    records[0][at + 1:at + 1] = [("participant", VoteCast(1, second))]  # a second ballot elsewhere
    violations = run_checker(records)
    assert any(v.invariant == "finality" and "2 ballots" in v.message for v in violations), violations
