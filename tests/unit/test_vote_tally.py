"""The vote tally as a table: the submitters of the montage version, the ballots the sites hold,
the deadline, and whether the count is final (the collection's) or still pending (the home
site's reports as they come in). Each row's description is a rule of the vote.

Decided from the code (domain/vote_tally.py) and written down here:
- a ballot cast exactly at the deadline counts; one cast after it is ignored, whatever it says;
- any reject cast by the deadline vetoes, even from someone who is not a submitter of the
  version (participants refuse such votes, so only a forged or buggy ballot could carry one:
  the tally errs on the side of not publishing);
- a person may vote at two sites (each site only knows its own ballots): an accept at one and a
  reject at another is a veto;
- accepts from non-submitters neither help nor hurt."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.messages import ACCEPT, REJECT, Ballot
from domain.vote_tally import ABORT, PENDING, PUBLISH, tally

DEADLINE = 1_000.0
SUBMITTERS = ("ann", "bob", "cat")


def accept(user: str, at: float = DEADLINE - 10, site: int = 1) -> Ballot:
    return Ballot(user, ACCEPT, at, site)


def reject(user: str, at: float = DEADLINE - 10, site: int = 1) -> Ballot:
    return Ballot(user, REJECT, at, site)


ALL_ACCEPTED = (accept("ann"), accept("bob", site=2), accept("cat", site=3))


@dataclass(frozen=True)
class Row:
    description: str
    ballots: tuple
    final: bool
    verdict: tuple[str, str | None]
    submitters: tuple = SUBMITTERS


def table(*rows: Row):
    return pytest.mark.parametrize("row", rows, ids=[r.description for r in rows])


TALLY = (
    Row("no ballots yet is pending while reports come in",
        (), False, (PENDING, None)),
    Row("no ballots at all in the final count aborts as timeout",
        (), True, (ABORT, "timeout")),
    Row("some accepts while reports come in are pending",
        (accept("ann"), accept("bob")), False, (PENDING, None)),
    Row("a missing accept in the final count aborts as timeout",
        (accept("ann"), accept("bob")), True, (ABORT, "timeout")),
    Row("every submitter's accept publishes while reports come in",
        ALL_ACCEPTED, False, (PUBLISH, None)),
    Row("every submitter's accept publishes in the final count",
        ALL_ACCEPTED, True, (PUBLISH, None)),
    Row("every submitter's accept, wherever it was cast, publishes",
        (accept("ann", site=3), accept("bob", site=3), accept("cat", site=3)), True,
        (PUBLISH, None)),
    Row("an accept cast exactly at the deadline counts",
        (accept("ann"), accept("bob"), accept("cat", at=DEADLINE)), True, (PUBLISH, None)),
    Row("an accept cast after the deadline does not count, so the round times out",
        (accept("ann"), accept("bob"), accept("cat", at=DEADLINE + 0.001)), True,
        (ABORT, "timeout")),
    Row("an accept cast after the deadline leaves reports pending",
        (accept("ann"), accept("bob"), accept("cat", at=DEADLINE + 1)), False, (PENDING, None)),
    Row("a single reject decides at once while reports come in",
        (reject("bob"),), False, (ABORT, "rejected")),
    Row("a single reject vetoes every accept in the final count",
        (*ALL_ACCEPTED, reject("bob", site=2)), True, (ABORT, "rejected")),
    Row("a reject cast exactly at the deadline vetoes",
        (*ALL_ACCEPTED, reject("cat", at=DEADLINE)), True, (ABORT, "rejected")),
    Row("a reject cast after the deadline does not count: unanimous accepts in time publish",
        (*ALL_ACCEPTED, reject("cat", at=DEADLINE + 5, site=2)), True, (PUBLISH, None)),
    Row("a reject cast after the deadline does not count: a missing accept times out",
        (accept("ann"), accept("bob"), reject("cat", at=DEADLINE + 5)), True,
        (ABORT, "timeout")),
    Row("a submitter's accept at one site and reject at another is a veto",
        (*ALL_ACCEPTED, reject("ann", site=2)), True, (ABORT, "rejected")),
    Row("a submitter's accept at one site and reject at another is a veto while reports "
        "come in",
        (accept("ann", site=1), reject("ann", site=2)), False, (ABORT, "rejected")),
    Row("a reject vetoes even from someone who is not a submitter of the version",
        (*ALL_ACCEPTED, reject("eve")), True, (ABORT, "rejected")),
    Row("an accept from someone who is not a submitter does not stand in for a submitter",
        (accept("ann"), accept("bob"), accept("eve")), True, (ABORT, "timeout")),
    Row("an accept from someone who is not a submitter does not stop publication",
        (*ALL_ACCEPTED, accept("eve")), True, (PUBLISH, None)),
    Row("a submitter's accept counted twice (two sites) is still one submitter",
        (accept("ann", site=1), accept("ann", site=2), accept("bob")), True,
        (ABORT, "timeout")),
    Row("a single submitter's accept publishes a one-person event",
        (accept("ann"),), True, (PUBLISH, None), submitters=("ann",)),
)


@table(*TALLY)
def test_the_tally_publishes_only_on_every_submitters_accept_by_the_deadline(row):
    assert tally(row.submitters, row.ballots, DEADLINE, row.final) == row.verdict


def test_the_tally_takes_submitters_and_ballots_as_any_iterable():
    ballots = iter(ALL_ACCEPTED)
    assert tally(iter(SUBMITTERS), ballots, DEADLINE, final=True) == (PUBLISH, None)


# --- properties over many ballot sets ------------------------------------------------------------

USERS = ("ann", "bob", "cat", "eve")
ballot = st.builds(Ballot, st.sampled_from(USERS), st.sampled_from((ACCEPT, REJECT)),
                   st.sampled_from((DEADLINE - 50, DEADLINE - 1, DEADLINE, DEADLINE + 1)),
                   st.integers(1, 4))
ballots = st.lists(ballot, max_size=8)
QUICK = settings(max_examples=150, deadline=None, derandomize=True, database=None)


@QUICK
@given(ballots, st.randoms(use_true_random=False))
def test_the_order_of_the_ballots_does_not_matter(found, rnd):
    shuffled = list(found)
    rnd.shuffle(shuffled)
    for final in (False, True):
        assert tally(SUBMITTERS, shuffled, DEADLINE, final) == tally(SUBMITTERS, found, DEADLINE,
                                                                     final)


@QUICK
@given(ballots)
def test_the_final_count_is_never_pending_and_agrees_with_a_decided_pending_count(found):
    final = tally(SUBMITTERS, found, DEADLINE, final=True)
    early = tally(SUBMITTERS, found, DEADLINE, final=False)
    assert final[0] != PENDING
    if early[0] != PENDING:
        assert early == final


@QUICK
@given(ballots)
def test_a_publication_means_every_submitter_accepted_in_time_and_no_one_rejected(found):
    verdict, reason = tally(SUBMITTERS, found, DEADLINE, final=True)
    in_time = [b for b in found if b.at <= DEADLINE]
    if verdict == PUBLISH:
        assert reason is None
        assert set(SUBMITTERS) <= {b.user for b in in_time if b.decision == ACCEPT}
        assert all(b.decision == ACCEPT for b in in_time)
    else:
        assert reason == ("rejected" if any(b.decision == REJECT for b in in_time) else "timeout")


@QUICK
@given(ballots, st.lists(ballot, max_size=4))
def test_ballots_cast_after_the_deadline_never_change_the_verdict(found, extra):
    late = [Ballot(b.user, b.decision, DEADLINE + 1 + i, b.site) for i, b in enumerate(extra)]
    for final in (False, True):
        assert tally(SUBMITTERS, found + late, DEADLINE, final) == tally(SUBMITTERS, found,
                                                                         DEADLINE, final)


@QUICK
@given(ballots, st.sampled_from(USERS), st.sampled_from((DEADLINE - 1, DEADLINE)))
def test_a_reject_cast_in_time_vetoes_whatever_other_ballots_there_are(found, user, at):
    with_veto = [*found, reject(user, at=at)]
    for final in (False, True):
        assert tally(SUBMITTERS, with_veto, DEADLINE, final) == (ABORT, "rejected")
