"""The audit's sequence diagrams: traces of every site's log (web.pages.audit_traces), and their SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from web.pages.audit_traces import transactions
from web.pages.sequence_diagram import draw

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"
TXN = "1-abc"
PHOTOS = {"type": "AddPhotos", "base_version": 0,
          "photos": [{"submitter": "u" * 32, "submitter_name": "Ada", "sha256": "s", "site": 1}]}


def entry(ms: float, role: str, kind: str, **data) -> dict:
    return {"at": (T0 + timedelta(milliseconds=ms)).isoformat(), "role": role, "type": kind, "data": data}


def began(ms, txn=TXN, sites=(0, 1, 2), payload=PHOTOS):
    return entry(ms, "coordinator", "Began", txn_id=txn, payload=payload, sites=list(sites))


def prepared(ms, txn=TXN, coordinator=1, payload=PHOTOS):
    return entry(ms, "participant", "Prepared", txn_id=txn, coordinator=coordinator, payload=payload)


def decided(ms, commit=True, reason=None, txn=TXN):
    return entry(ms, "coordinator", "Decided", txn_id=txn, commit=commit, reason=reason)


def committed(ms, txn=TXN):
    return entry(ms, "participant", "Committed", txn_id=txn)


def aborted(ms, reason, txn=TXN):
    return entry(ms, "participant", "Aborted", txn_id=txn, reason=reason, payload=None)


def acked(ms, site, txn=TXN):
    """An acknowledgement as logs before 2026-12 stored it: one record per site."""
    return entry(ms, "coordinator", "Acknowledged", txn_id=txn, site=site)


def acked_all(ms, sites, txn=TXN):
    return entry(ms, "coordinator", "Acknowledged", txn_id=txn, sites=list(sites))


def committed_everywhere() -> dict:
    return {
        0: [prepared(2), committed(12)],
        1: [began(0), prepared(1), decided(5), committed(6), acked(7, 1), acked(13, 0), acked(14, 2)],
        2: [prepared(3), committed(11)],
    }


def labels(trace) -> list[tuple[int, int, str]]:
    return [(s.source, s.target, s.label) for s in trace.steps]


def svg_texts(svg: str) -> list[str]:
    return [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_a_committed_upload_is_one_trace_with_prepare_decide_commit_and_ack_in_causal_order():
    (trace,) = transactions(committed_everywhere())
    assert trace.key == TXN and trace.coordinator == 1
    assert trace.outcome == "committed" and trace.title == "add 1 photo by Ada on version 0"
    assert labels(trace) == [
        (1, 1, "begin; prepare to 0, 1, 2"),
        (1, 1, "prepare → yes"), (1, 0, "prepare → yes"), (1, 2, "prepare → yes"),
        (1, 1, "decide: commit"),
        (1, 1, "commit"), (1, 1, "ack"), (1, 2, "commit"), (1, 0, "commit"), (0, 1, "ack"), (2, 1, "ack"),
    ]
    assert not any(s.again or s.lost for s in trace.steps)


def test_one_record_of_every_acknowledgement_is_an_ack_arrow_from_each_site_it_names():
    logs = committed_everywhere()
    logs[1] = [*logs[1][:4], acked_all(14, (1, 0, 2))]
    (trace,) = transactions(logs)
    assert [label for label in labels(trace) if label[2] == "ack"] == [(1, 1, "ack"), (0, 1, "ack"), (2, 1, "ack")]
    assert not any(s.again or s.lost for s in trace.steps)


def test_a_transaction_whose_began_was_lost_shows_its_prepares_and_the_aborts_that_followed():
    """Presumed abort: the prepares went while the Began was stored, and it never was; the
    sites that prepared asked, heard "unknown" and aborted."""
    logs = {0: [prepared(2), aborted(900, "unknown")], 1: [prepared(1), aborted(905, "unknown")], 2: []}
    (trace,) = transactions(logs)
    assert trace.coordinator == 1 and trace.outcome == "aborted"  # by the transaction's id
    assert labels(trace) == [(1, 1, "prepare → yes"), (1, 0, "prepare → yes"),
                             (1, 0, "abort (unknown)"), (1, 1, "abort (unknown)")]


def test_a_refusal_is_an_answer_no_with_its_reason_and_the_abort_reaches_every_site():
    logs = {
        0: [entry(2, "participant", "Refused", txn_id=TXN, coordinator=1, reason="conflict"),
            aborted(9, "conflict")],
        1: [began(0), prepared(1), decided(5, False, "conflict"), aborted(6, "conflict")],
        2: [prepared(3), aborted(8, "conflict")],
    }
    (trace,) = transactions(logs)
    assert (1, 0, "prepare → no: conflict") in labels(trace)
    assert (1, 1, "decide: abort (conflict)") in labels(trace)
    assert trace.outcome == "aborted (conflict)" and trace.tone == "bad"


def test_a_prepare_without_answer_before_an_abort_is_drawn_as_lost():
    logs = {0: [], 1: [began(0), prepared(1), decided(1500, False, "unreachable"), aborted(1501, "unreachable")],
            2: [prepared(3), aborted(1502, "unreachable")]}
    (trace,) = transactions(logs)
    lost = [s for s in trace.steps if s.lost]
    assert [(s.source, s.target, s.label) for s in lost] == [(1, 0, "prepare: no answer in time")]
    assert trace.steps.index(lost[0]) < [s.label for s in trace.steps].index("decide: abort (unreachable)")


def test_an_unreachable_sites_part_is_unknown_not_missing():
    logs = {0: None, 1: [began(0), prepared(1), decided(1500, False, "unreachable")], 2: [prepared(3)]}
    (trace,) = transactions(logs)
    assert [(s.target, s.label, s.tone) for s in trace.steps if s.lost] == [(0, "prepare: answer unknown", "warn")]
    svg = draw(trace, [0, 1, 2], unavailable={0})
    assert "log unavailable" in svg_texts(svg)


def test_a_repeated_record_and_a_late_commit_are_drawn_as_retries():
    logs = committed_everywhere()
    logs[1].append(acked(15, 0))  # the same acknowledgement stored twice
    logs[2] = [prepared(3), committed(3500)]  # applied 3.5 s after the decision: resent or asked for
    (trace,) = transactions(logs)
    again = [(s.source, s.target, s.label) for s in trace.steps if s.again]
    assert again == [(0, 1, "ack (again)"), (1, 2, "commit (3.5 s after the decision)")]
    assert 'stroke-dasharray="5 4"' in draw(trace, [0, 1, 2])


def test_a_coordinator_restart_shows_as_the_reason_of_its_abort():
    logs = {0: [prepared(2), aborted(900, "coordinator_restarted")],
            1: [began(0), prepared(1), decided(800, False, "coordinator_restarted")], 2: [prepared(3)]}
    (trace,) = transactions(logs)
    assert (1, 1, "↯ restarted: abort") in labels(trace)
    assert (2, 2, "in doubt: outcome not yet applied") in labels(trace)


def test_votes_of_a_round_are_one_trace_with_each_report_as_an_arrow_to_the_home_site():
    ballot = {"user": "b" * 32, "decision": "reject", "at": 1.0, "site": 2}
    logs = {0: [entry(5, "coordinator", "Reported", round=1, ballot=ballot)],
            2: [entry(1, "participant", "VoteCast", round=1, ballot=ballot)]}
    (trace,) = transactions(logs, {"b" * 32: "Bo"})
    assert trace.title == "votes of round 1" and trace.coordinator == 0
    assert labels(trace) == [(2, 2, "Bo votes reject"), (2, 0, "report: Bo rejects")]


def test_traces_are_ordered_by_when_they_began():
    later = {1: [began(50, txn="1-later"), decided(60, txn="1-later")], 0: [began(10, txn="0-first")]}
    assert [t.key for t in transactions(later)] == ["0-first", "1-later"]


@pytest.mark.parametrize("title", ['<script>alert("x")</script>', "Tom & Jerry's"])
def test_the_svg_is_well_formed_and_escapes_what_people_typed(title):
    create = {"type": "CreateEvent", "title": title, "home_site": 0}
    logs = {0: [began(0, "0-x", (0,), create), prepared(1, "0-x", 0, create), decided(2, txn="0-x")]}
    (trace,) = transactions(logs)
    svg = draw(trace, [0])
    root = ET.fromstring(svg)  # raises on anything unescaped
    assert root.find(f"{SVG}title").text == f"create the event “{title}”: committed"
    assert "<script>" not in svg


def test_every_site_is_a_lane_in_order_with_the_coordinator_marked():
    (trace,) = transactions(committed_everywhere())
    texts = svg_texts(draw(trace, [0, 1, 2, 3]))
    assert [t for t in texts if t and t.startswith("site ")] == ["site 0", "site 1 · coordinator", "site 2", "site 3"]
    assert texts.count("+0 ms") == 1
